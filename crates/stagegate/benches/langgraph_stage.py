"""The stage shape of `whole_process.rs` in LangGraph, for a side-by-side figure.

usage: python langgraph_stage.py AGENTS LIMIT LATENCY_MS

Fans out to AGENTS no-op agents (each sleeps LATENCY_MS) with at most LIMIT at once, then a
reviewer, a synthesizer and QA, one after another; state is checkpointed in memory. Prints the
run's own wall time in ms (the caller times the whole process too).
"""

import asyncio
import operator
import sys
import time
from typing import Annotated, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send


class StageState(TypedDict):
    outputs: Annotated[list, operator.add]
    review: str
    artifact: str
    verdict: str


def main() -> None:
    agents, limit, latency_ms = (int(arg) for arg in sys.argv[1:4])
    latency = latency_ms / 1000.0

    async def agent(task: dict) -> dict:
        if latency:
            await asyncio.sleep(latency)
        return {"outputs": [f"output of agent {task['index']}"]}

    async def reviewer(state: StageState) -> dict:
        if latency:
            await asyncio.sleep(latency)
        return {"review": f"{len(state['outputs'])} outputs reconciled"}

    async def synthesizer(state: StageState) -> dict:
        if latency:
            await asyncio.sleep(latency)
        return {"artifact": state["review"]}

    async def qa(state: StageState) -> dict:
        if latency:
            await asyncio.sleep(latency)
        return {"verdict": "pass"}

    def fan_out(_state: StageState) -> list:
        return [Send("agent", {"index": index}) for index in range(agents)]

    graph = StateGraph(StageState)
    graph.add_node("agent", agent)
    graph.add_node("reviewer", reviewer)
    graph.add_node("synthesizer", synthesizer)
    graph.add_node("qa", qa)
    graph.add_conditional_edges(START, fan_out, ["agent"])
    graph.add_edge("agent", "reviewer")
    graph.add_edge("reviewer", "synthesizer")
    graph.add_edge("synthesizer", "qa")
    graph.add_edge("qa", END)
    app = graph.compile(checkpointer=InMemorySaver())

    started = time.perf_counter()
    result = asyncio.run(
        app.ainvoke(
            {"outputs": [], "review": "", "artifact": "", "verdict": ""},
            {"configurable": {"thread_id": "bench"}, "max_concurrency": limit, "recursion_limit": 100},
        )
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert len(result["outputs"]) == agents and result["verdict"] == "pass"
    print(f"{elapsed_ms:.1f}")


if __name__ == "__main__":
    main()
