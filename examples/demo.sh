#!/usr/bin/env bash
# Runs stagegate's default pipeline (plan → prep → analyze) on the bundled example feature,
# offline, in a fresh temporary git repository, deciding each gate from the command line.
#
#   ./examples/demo.sh                      build stagegate (release) and run the demo; the first
#                                           build compiles about 300 crates: ~3 minutes on a quiet
#                                           4-core machine, up to ~30 on a busy 2-core one
#   STAGEGATE_BIN=path/to/stagegate ./examples/demo.sh   use that binary, build nothing
#   DEMO_CLEANUP=1 ./examples/demo.sh       remove the temporary repository at the end
#
# The script prints no colour of its own; stagegate honours NO_COLOR and works without a terminal.
set -euo pipefail

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd -- "$script_dir/.." && pwd)
feature=specs/001-team-photo-albums

say() { printf '%s\n' "$*"; }
err() { printf 'demo.sh: error: %s\n' "$*" >&2; }

step_number=0
banner() {
    step_number=$((step_number + 1))
    printf '\n==> %d. %s\n' "$step_number" "$*"
}

# What stagegate's exit codes mean (PRODUCT.md §3), for error messages.
exit_code_meaning() {
    case $1 in
        0) say "done" ;;
        1) say "internal or I/O error" ;;
        2) say "usage or configuration error" ;;
        3) say "stage failed: too few agents succeeded" ;;
        4) say "rejected at a gate" ;;
        5) say "a stage input is missing or stale" ;;
        10) say "stopped at a gate awaiting a decision" ;;
        *) say "unexpected exit code" ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# The stagegate binary

if ! command -v git >/dev/null 2>&1; then
    err "git is not installed; the demo runs in a temporary git repository."
    say "hint: install git (e.g. 'apt-get install git') and run the demo again." >&2
    exit 1
fi

if [[ -n "${STAGEGATE_BIN:-}" ]]; then
    bin=$STAGEGATE_BIN
    [[ $bin == /* ]] || bin="$PWD/$bin"
else
    if ! command -v cargo >/dev/null 2>&1; then
        err "cargo is not on the PATH; the demo builds stagegate from source."
        say "hint: install a Rust toolchain >= 1.95 (https://rustup.rs), or set STAGEGATE_BIN to a built stagegate binary." >&2
        exit 1
    fi
    banner "Building stagegate (cargo build --release)"
    say "A first build compiles about 300 crates: ~3 minutes on a quiet 4-core machine, up to ~30"
    say "on a busy 2-core one. Later runs of the demo reuse it and start at once."
    # cargo's own progress (a bar in a terminal, one line per crate otherwise) on stderr.
    (cd "$repo_root" && cargo build --release --locked -p stagegate)
    # Where cargo put it: honours CARGO_TARGET_DIR and build.target-dir.
    target_dir=$(cd "$repo_root" && cargo metadata --format-version 1 --no-deps --offline 2>/dev/null |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p') || target_dir=
    bin="${target_dir:-$repo_root/target}/release/stagegate"
fi

if [[ ! -x $bin ]]; then
    err "no stagegate binary at $bin"
    exit 1
fi

# The demo shows the offline pipeline as configured below, whatever the caller's environment
# says; STAGEGATE_NO_PROGRESS is left alone.
unset STAGEGATE_BACKEND STAGEGATE_CONCURRENCY STAGEGATE_RETRIES STAGEGATE_BACKOFF \
    STAGEGATE_MIN_SUCCESS_RATIO STAGEGATE_TIMEOUT STAGEGATE_STAGE_TIMEOUT \
    SPECIFY_FEATURE_DIRECTORY

# ---------------------------------------------------------------------------------------------
# A fresh repository with the example feature

demo_dir=$(mktemp -d "${TMPDIR:-/tmp}/stagegate-demo.XXXXXX")

on_exit() {
    local status=$?
    if [[ ${DEMO_CLEANUP:-0} == 1 ]]; then
        rm -rf -- "$demo_dir"
    elif ((status != 0)); then
        printf '\nThe demo repository is kept for inspection: %s\n' "$demo_dir" >&2
    fi
}
trap on_exit EXIT

banner "Creating a temporary repository with the example feature: $demo_dir"
cd "$demo_dir"
git init -q
git config user.name "stagegate demo"
git config user.email "demo@example.invalid"
git config commit.gpgsign false

mkdir -p "$feature" .specify/memory
cp -- "$script_dir/$feature/spec.md" "$script_dir/$feature/tasks.md" "$feature/"
cp -- "$script_dir/constitution.md" .specify/memory/constitution.md

cat >stagegate.toml <<'TOML'
# Written by stagegate's examples/demo.sh. Every agent, reviewer, synthesizer and the QA check
# run on the built-in offline analysts (the default backend), so the demo needs no model and no
# network. To use a CLI agent instead: `stagegate init`, or e.g.
#   [defaults]
#   backend = "claude"
[defaults]
backend = "builtin"
TOML

printf '.stagegate/\n' >.gitignore
git add -A
git commit -q -m "Team photo albums: specification and tasks"
# spec-kit works on a branch named after the feature.
git checkout -q -b 001-team-photo-albums

find . -path ./.git -prune -o -type f -print | sed 's|^\./|  |' | sort

# ---------------------------------------------------------------------------------------------
# The pipeline

# stagegate WANT ARGS...: runs `stagegate ARGS...` in the demo repository, its output going
# straight to the terminal (live progress), and stops the demo unless it exits with WANT.
stagegate_expect() {
    local want=$1
    shift
    printf '$ stagegate'
    local argument
    for argument in "$@"; do
        if [[ $argument =~ ^[A-Za-z0-9_./=:-]+$ ]]; then
            printf ' %s' "$argument"
        else
            printf ' "%s"' "$argument"
        fi
    done
    printf '\n'
    local code=0
    "$bin" "$@" || code=$?
    if ((code != want)); then
        printf '\n' >&2
        err "'stagegate $*' exited with code $code ($(exit_code_meaning "$code")); the demo expected $want ($(exit_code_meaning "$want"))."
        say "Its output is above. Run directories: $demo_dir/.stagegate/runs/" >&2
        exit 1
    fi
}

# The feature directory's files, one a line, for telling what an approval published.
feature_files() { (cd "$feature" && find . -type f | sed 's|^\./||' | sort); }

# Prints what appeared in the feature directory since BEFORE (a feature_files listing) and
# adds it to the demo's tally.
published_files=()
report_published() {
    local before=$1 file new=()
    while IFS= read -r file; do
        [[ -n $file ]] && new+=("$file")
    done < <(comm -13 <(printf '%s\n' "$before") <(feature_files))
    say "published ${#new[@]} file(s) into $feature: ${new[*]:-none}"
    published_files+=("${new[@]}")
}

expect_file() {
    [[ -f $1 ]] || {
        err "expected $1 to exist after the approval, it does not."
        exit 1
    }
}

banner "Approving the specification (binds the approval to spec.md's current content)"
stagegate_expect 0 approve spec --feature "$feature"

banner "Stage A (plan): 4 agents in parallel -> review -> synthesis -> QA -> gate"
stagegate_expect 10 run plan --no-input --feature "$feature"

banner "Where things stand"
stagegate_expect 0 status

banner "Approving the plan gate: its staged artifacts are published"
before=$(feature_files)
stagegate_expect 0 approve --note "demo"
expect_file "$feature/plan.md"
expect_file "$feature/planning-summary.md"
report_published "$before"

banner "Stage B (prep): implementation plan"
stagegate_expect 10 run prep --no-input --feature "$feature"
before=$(feature_files)
stagegate_expect 0 approve
expect_file "$feature/implementation_plan.md"
report_published "$before"

banner "Marking the implementation done (tasks.md is not all checked in the example)"
stagegate_expect 0 approve implementation --feature "$feature"

banner "Stage C (analyze): quality review, then a rejection"
stagegate_expect 10 run analyze --no-input --feature "$feature"
stagegate_expect 0 reject --reason "demo: shows a rejection"
if [[ -e $feature/quality_report.md ]]; then
    err "quality_report.md was published although its gate was rejected."
    exit 1
fi

banner "The feature directory (quality_report.md is absent: it was rejected)"
ls -- "$feature"

# The metrics are one command away rather than printed: a few hundred lines of JSON would push
# this summary off the screen.
run_count=$(find .stagegate/runs -mindepth 1 -maxdepth 1 -type d | wc -l)

printf '\n==> Summary\n'
say "Ran:       $run_count runs, offline (built-in analysts): plan approved, prep approved, analyze rejected"
say "Published: ${#published_files[@]} files into $feature: ${published_files[*]}"
say "Look at:"
if [[ ${DEMO_CLEANUP:-0} == 1 ]]; then
    say "  (the demo repository is removed: DEMO_CLEANUP=1)"
else
    say "  cd $demo_dir"
    say "  $bin status                    where each run stands"
    say "  $bin runs                      every run and its decision"
    say "  $bin show RUN                  what each agent received and answered"
    say "  $bin metrics --format json     the full metrics"
    say "  ls .stagegate/runs/            each stage's staged artifacts"
    say "Remove it with: rm -rf $demo_dir  (or run the demo with DEMO_CLEANUP=1)"
fi
