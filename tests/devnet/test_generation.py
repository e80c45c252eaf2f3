"""Images out and web search on the devnet: image models return a real PNG drawn from the prompt,
and `web_search` answers from the local corpus the devnet ships, labelled as such."""

from __future__ import annotations

import base64

import pytest

import opengradient as og
from opengradient.client.tee import canonical_chat_request, request_hash
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.llm import generation, media

PROMPT = [{"role": "user", "content": "A lighthouse at dusk"}]


def _png(uri: str) -> bytes:
    assert uri.startswith("data:image/png;base64,")
    return base64.b64decode(uri.split(",", 1)[1])


@pytest.mark.parametrize("model", [og.TEE_LLM.GEMINI_2_5_FLASH_IMAGE, og.TEE_LLM.GPT_IMAGE_2,
                                   og.TEE_LLM.GROK_2_IMAGE])
def test_an_image_model_returns_a_png_drawn_from_the_prompt(devnet: Devnet, model: og.TEE_LLM) -> None:
    result = devnet.client.llm.chat(model, PROMPT, max_tokens=None)
    assert result.tee_verified and result.images and len(result.images) == 1
    image = _png(result.images[0])
    assert media.describe_image(image).startswith("a PNG image, 64x64 pixels")
    assert image == generation.draw_png("A lighthouse at dusk")
    assert "images" not in (result.chat_output or {})  # beside the signed text, not in it


def test_the_same_prompt_gives_the_same_image_and_another_prompt_another() -> None:
    assert generation.draw_png("a cat") == generation.draw_png("a cat")
    assert generation.draw_png("a cat") != generation.draw_png("a dog")


def test_a_streamed_image_model_carries_the_image_on_the_final_chunk(devnet: Devnet) -> None:
    stream = devnet.client.llm.chat(og.TEE_LLM.GEMINI_3_1_FLASH_IMAGE, PROMPT, max_tokens=None, stream=True)
    chunks = list(stream)
    assert any(c.is_final and c.images for c in chunks)
    assert stream.result is not None and stream.result.tee_verified and stream.result.images
    assert _png(stream.result.images[0]) == generation.draw_png("A lighthouse at dusk")


def test_web_search_answers_from_the_local_corpus_and_is_signed(devnet: Devnet) -> None:
    messages = [{"role": "user", "content": "How does Oblivious HTTP hide requests from the relay?"}]
    result = devnet.client.llm.chat("openai/gpt-4o", messages, max_tokens=None, web_search=True)
    text = str((result.chat_output or {}).get("content"))
    assert result.tee_verified
    assert "the devnet's local corpus, not the internet" in text
    assert "devnet-corpus://oblivious-http" in text
    assert result.tee_request_hash == request_hash(canonical_chat_request(
        {"model": "openai/gpt-4o", "messages": messages, "web_search": True})).hex()


def test_without_web_search_nothing_is_searched(devnet: Devnet) -> None:
    result = devnet.client.llm.chat("openai/gpt-4o", [{"role": "user", "content": "Oblivious HTTP?"}])
    assert "devnet-corpus://" not in str((result.chat_output or {}).get("content"))


def test_web_search_must_be_a_boolean(devnet: Devnet) -> None:
    with pytest.raises(og.InvalidInputError, match="web_search"):
        devnet.client.llm.chat("openai/gpt-4o", PROMPT, web_search="yes")  # type: ignore[call-overload]


def test_every_0_7_4_name_still_works() -> None:
    for name in ("GPT_4O", "CLAUDE_3_5_HAIKU", "GEMINI_2_0_FLASH", "GROK_2_VISION_LATEST", "O4_MINI",
                 "GPT_4_1_2025_04_14", "GEMINI_2_5_FLASH_LITE", "GROK_3_MINI_BETA", "CLAUDE_4_0_SONNET"):
        assert og.TEE_LLM[name].value.count("/") == 1
    assert og.TEE_LLM.GPT_IMAGE_2 == "openai/gpt-image-2" and og.TEE_LLM.HERMES_4_70B == "nous/hermes-4-70b"
