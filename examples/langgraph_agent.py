"""A LangGraph ReAct agent on OpenGradient: the model calls a tool, reads its result, answers.

Run: `python examples/langgraph_agent.py` (needs the `langchain` and `devnet` extras). The graph
is LangGraph's own: a model node bound to the tools, LangGraph's prebuilt `ToolNode`, and
`tools_condition` to loop until the model stops calling tools. Each model turn is a paid,
TEE-verified call on the in-process devnet, and each answer keeps its proof.
"""

from __future__ import annotations

import sys

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import opengradient as og
from opengradient.agents import OpenGradientChatModel


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny and 22 degrees in {city}."


def build_agent(llm: OpenGradientChatModel) -> CompiledStateGraph:
    """model → (tools → model)* until the model answers without calling a tool."""
    tools = [get_weather]
    model = llm.bind_tools(tools)

    def call_model(state: MessagesState) -> dict[str, list]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    return graph.compile()


def main(http: bool = False) -> None:
    with og.devnet.start(http=http) as net:
        llm = OpenGradientChatModel(client=net.client, model="openai/gpt-4o")
        agent = build_agent(llm)
        state = agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]})
        for message in state["messages"]:
            if isinstance(message, AIMessage) and message.tool_calls:
                call = message.tool_calls[0]
                print(f"model called: {call['name']}({call['args']})")
            elif message.type == "tool":
                print(f"tool said:    {message.content}")
        final = state["messages"][-1]
        print(f"answer:       {final.text}")
        proofs = [og.Proof.from_dict(m.response_metadata["proof"]) for m in state["messages"]
                  if isinstance(m, AIMessage)]
        print(f"proofs:       {len(proofs)} model turns, all verified: {all(p.verify(net.client) for p in proofs)}")


if __name__ == "__main__":
    main(http="--http" in sys.argv[1:])
