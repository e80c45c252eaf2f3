"""The devnet's chains: py-evm with geth-shaped JSON-RPC (`evm`), the transaction pool and block
builder (`mempool`), the custom precompiles (`precompiles`), contract deployment and the committed
Solidity artifacts (`deploy`, `contracts/`), development keys and payments-chain modes.

Nothing here imports the services or the node: precompiles get what they need (model bytes, a
ZKML prover, an offline model) from the node, through small protocols.
"""
