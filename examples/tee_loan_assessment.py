"""LLM guide, TEE example "Financial Risk Assessment": a TEE-verified completion, on the devnet.

The guide's code with one change: the client talks to a local devnet (`network=net.network`).
The request goes through the devnet's TEE gateway (x402-paid, enclave-signed); the hash of the
exact prompt is part of what the enclave signed, which is the audit trail the guide describes.

Run: python examples/tee_loan_assessment.py
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

        # Assess loan application with verified audit trail
        loan_data = {
            "applicant_income": 75000,
            "credit_score": 720,
            "debt_to_income": 0.35,
            "loan_amount": 250000,
        }
        prompt = f"""Assess this loan application for approval:
Income: ${loan_data['applicant_income']}
Credit Score: {loan_data['credit_score']}
Debt-to-Income Ratio: {loan_data['debt_to_income']}
Requested Loan: ${loan_data['loan_amount']}
Provide risk assessment and recommendation."""

        result = client.llm_completion(
            model_cid="gpt-4",
            prompt=prompt,
            max_tokens=250,
            temperature=0.0,
            inference_mode=og.LlmInferenceMode.TEE,  # Cryptographic proof of assessment criteria
        )
        print(f"Response: {result.completion_output}")
        print(f"Payment hash: {result.payment_hash}")
        print(f"Signed request hash: 0x{result.tee_request_hash}")


if __name__ == "__main__":
    main()
