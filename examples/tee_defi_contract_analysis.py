"""LLM guide, TEE example "DeFi Smart Contract Analysis": a TEE-verified completion, on the devnet.

The guide's code with one change: the client talks to a local devnet (`network=net.network`).
`inference_mode=og.LlmInferenceMode.TEE` sends the request through the devnet's TEE gateway: it
is paid with x402 (OPG on the devnet's payments chain; the payment hash is the settlement
transaction) and the answer is signed by the gateway's enclave key, which the client checks
against the TEE registry before returning.

Run: python examples/tee_defi_contract_analysis.py
"""

from __future__ import annotations

import opengradient as og


def main() -> None:
    with og.devnet.start(http=True) as net:
        client = og.new_client(
            email=None,
            password=None,
            private_key=net.accounts[0].private_key,  # the guide reads os.environ["OG_PRIVATE_KEY"]
            network=net.network,
        )

        # Analyze a smart contract with verified prompts for audit trail
        contract_code = """
function transfer(address to, uint256 amount) public {
    require(balanceOf[msg.sender] >= amount, "Insufficient balance");
    balanceOf[msg.sender] -= amount;
    balanceOf[to] += amount;
}
"""
        result = client.llm_completion(
            model_cid="gpt-4",
            prompt=f"Analyze this Solidity smart contract function for security vulnerabilities:\n\n{contract_code}",
            max_tokens=500,
            temperature=0.0,
            inference_mode=og.LlmInferenceMode.TEE,  # Verified prompt for audit compliance
        )
        print(f"Response: {result.completion_output}")
        print(f"Payment hash: {result.payment_hash}")
        print(f"TEE verified: {result.tee_verified} (enclave {result.tee_id})")


if __name__ == "__main__":
    main()
