//! Markdown (CommonMark with GitHub's tables, task lists and strikethrough) to HTML that is safe
//! to put in a page: raw HTML in the text is shown as text, never interpreted; links keep only
//! safe targets; images become links (the pages load nothing from elsewhere).

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd, html};

/// Renders `markdown` to HTML. Agent text passes through here before it reaches a page.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_GFM;
    let events = Parser::new_ext(markdown, options).map(neutralise);
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// Raw HTML becomes text (a block of it, a code block); unsafe link targets become `#`.
fn neutralise(event: Event<'_>) -> Event<'_> {
    match event {
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        Event::Start(Tag::HtmlBlock) => {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(CowStr::Borrowed(""))))
        }
        Event::End(TagEnd::HtmlBlock) => Event::End(TagEnd::CodeBlock),
        // An image becomes a link to it: the page never loads what an agent points at.
        Event::Start(
            Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }
            | Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            },
        ) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_target(dest_url),
            title,
            id,
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    }
}

/// Web and mail links and links within the document; anything else (`javascript:`, `data:`,
/// `file:`) is dropped.
fn safe_target(target: CowStr<'_>) -> CowStr<'_> {
    let lower = target.trim().to_ascii_lowercase();
    let has_scheme = lower
        .split_once(':')
        .is_some_and(|(scheme, _)| !scheme.contains(['/', '?', '#']));
    let allowed = ["http:", "https:", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme));
    if has_scheme && !allowed {
        CowStr::Borrowed("#")
    } else {
        target
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn tables_headings_and_task_lists_render_as_html() {
        let html = render(
            "## Technical Context\n\n| Item | Value |\n|---|---|\n| Language | Rust |\n\n- [x] T001 done\n- [ ] T002 open\n",
        );
        assert!(html.contains("<h2>Technical Context</h2>"), "{html}");
        assert!(
            html.contains("<table>") && html.contains("<th>Item</th>"),
            "{html}"
        );
        assert!(html.contains("<td>Rust</td>"), "{html}");
        assert!(html.contains("type=\"checkbox\""), "{html}");
    }

    #[test]
    fn raw_html_and_unsafe_links_never_reach_the_page() {
        let html = render(
            "<script>alert(1)</script>\n\nText <img src=x onerror=alert(2)> and [a](javascript:alert(3)) and ![i](data:x) and [ok](https://example.com)\n",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.to_lowercase().contains("javascript:"), "{html}");
        assert!(!html.contains("data:x"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
    }
}
