"""The devnet's services, on top of its chains: the LLM gateway with its payments (`llm`), the Model
Hub, twins, workflows and ZKML proving, and the shipped models. They use the chain; the node wires
them; none of them imports the node.
"""
