"""Chat render: exact ids and loss masks, tool parts, validation, truncation, imported templates."""

import hypothesis
import jinja2
import pytest
from hypothesis import strategies as st

from llm_jax.tokenizer import special
from llm_jax.tokenizer.bytes import ByteTokenizer
from llm_jax.tokenizer.chat import (InvalidConversation, detect_template, normalize, render, render_for_completion,
                                    stop_ids)

TOK = ByteTokenizer()
S = {t: TOK.special_id(t) for t in special.SPECIAL_TOKENS}
CHATML = ByteTokenizer(("<|im_start|>", "<|im_end|>", "<|endoftext|>"))
LLAMA3 = ByteTokenizer(("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                        "<|eom_id|>", "<|end_of_text|>"))
# The published templates (Qwen2 ChatML without default system; Llama 3 Instruct), rendered by jinja2.
CHATML_JINJA = ("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>' + '\n'}}"
                "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
LLAMA3_JINJA = ("{% for m in messages %}{% set content = '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n'"
                " + m['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + "
                "content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
                "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
CONV = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Yo"}, {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"}]


def b(text):
  return list(text.encode())


def test_exact_ids_and_mask():
  ids, mask = render(CONV, TOK)
  expect = ([S["<|bos|>"], S["<|system_start|>"]] + b("Be brief.") + [S["<|system_end|>"], S["<|user_start|>"]] +
            b("Hi") + [S["<|user_end|>"], S["<|assistant_start|>"]] + b("Yo") + [S["<|assistant_end|>"]] +
            [S["<|user_start|>"]] + b("2+2?") + [S["<|user_end|>"], S["<|assistant_start|>"]] + b("4") +
            [S["<|assistant_end|>"]])
  assert ids == expect
  # loss exactly on assistant text and <|assistant_end|>
  learned = [i for i, m in zip(ids, mask) if m]
  assert learned == b("Yo") + [S["<|assistant_end|>"]] + b("4") + [S["<|assistant_end|>"]]
  assert TOK.decode(ids).startswith("<|bos|><|system_start|>Be brief.<|system_end|><|user_start|>Hi")


def test_tool_parts_masked():
  conv = [{"role": "user", "content": "7*6?"},
          {"role": "assistant", "content": [
              {"type": "text", "text": "Let me compute."}, {"type": "python", "text": "7*6"},
              {"type": "python_output", "text": "42"}, {"type": "text", "text": "It is 42."}]}]
  ids, mask = render(conv, TOK)
  text = TOK.decode(ids)
  assert text.endswith("<|assistant_start|>Let me compute.<|python_start|>7*6<|python_end|>"
                       "<|output_start|>42<|output_end|>It is 42.<|assistant_end|>")
  learned = TOK.decode([i for i, m in zip(ids, mask) if m])
  assert learned == "Let me compute.<|python_start|>7*6<|python_end|>It is 42.<|assistant_end|>"
  masked_out = TOK.decode([i for i, m in zip(ids, mask) if not m])
  assert "<|output_start|>42<|output_end|>" in masked_out


def test_completion_prompt_and_stop():
  prompt = render_for_completion(CONV, TOK)  # the final assistant reply is dropped
  full, _ = render(CONV, TOK)
  assert prompt == full[:len(prompt)] and prompt[-1] == S["<|assistant_start|>"]
  assert TOK.decode(prompt).endswith("<|user_start|>2+2?<|user_end|><|assistant_start|>")
  assert S["<|assistant_end|>"] in stop_ids(TOK) and detect_template(TOK) == "llm_jax"


@pytest.mark.parametrize("conv,reason", [
    ([{"role": "bot", "content": "x"}], "unknown_role"),
    ([{"role": "assistant", "content": "x"}], "role_order"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "role_order"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "role_order"),
    ([{"role": "user", "content": "  "}, {"role": "assistant", "content": "b"}], "empty_content"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": ""}], "empty_content"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "python_output", "text": "1"}]}],
     "bad_part"),
    ([{"role": "user", "content": [{"type": "python", "text": "1"}]}], "bad_part"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": 3}], "bad_content"),
    ([], "not_a_conversation"),
    ([{"role": "user", "content": "only a question"}], "no_assistant"),
])
def test_invalid_conversations(conv, reason):
  with pytest.raises(InvalidConversation) as e:
    render(conv, TOK)
  assert e.value.reason == reason and str(e.value).startswith(reason + ": ")


def test_messages_dict_accepted():
  assert render({"messages": CONV}, TOK) == render(CONV, TOK)
  assert [r for r, _ in normalize(CONV)] == ["system", "user", "assistant", "user", "assistant"]


def test_truncation_drops_whole_turns_from_the_end():
  full, _ = render(CONV, TOK)
  first_exchange = render(CONV[:3], TOK)
  ids, mask = render(CONV, TOK, max_len=len(full) - 1)
  assert (ids, mask) == first_exchange  # the second exchange went whole
  assert render(CONV, TOK, max_len=len(full)) == render(CONV, TOK)
  with pytest.raises(InvalidConversation, match="too_long"):
    render(CONV, TOK, max_len=len(first_exchange[0]) - 1)


def test_chatml_matches_the_published_template():
  ids, mask = render(CONV, CHATML, template="chatml")
  assert CHATML.decode(ids) == jinja2.Template(CHATML_JINJA).render(messages=CONV, add_generation_prompt=False)
  assert CHATML.decode([i for i, m in zip(ids, mask) if m]) == "Yo<|im_end|>4<|im_end|>"
  prompt = render_for_completion(CONV[:4], CHATML, template="chatml")
  assert CHATML.decode(prompt) == jinja2.Template(CHATML_JINJA).render(messages=CONV[:4], add_generation_prompt=True)
  assert stop_ids(CHATML, "chatml") == (CHATML.special_id("<|im_end|>"),)
  assert detect_template(CHATML) == "chatml"


def test_llama3_matches_the_published_template():
  conv = [dict(m, content=f" {m['content']}\n") for m in CONV]  # content is trimmed
  ids, mask = render(conv, LLAMA3, template="llama3")
  want = jinja2.Template(LLAMA3_JINJA).render(messages=conv, bos_token="<|begin_of_text|>")
  assert LLAMA3.decode(ids) == want
  assert LLAMA3.decode([i for i, m in zip(ids, mask) if m]) == "Yo<|eot_id|>4<|eot_id|>"
  prompt = render_for_completion(conv[:4], LLAMA3, template="llama3")
  assert LLAMA3.decode(prompt) == jinja2.Template(LLAMA3_JINJA).render(
      messages=conv[:4], bos_token="<|begin_of_text|>", add_generation_prompt=True)
  assert set(stop_ids(LLAMA3, "llama3")) == {LLAMA3.special_id(t) for t in ("<|eot_id|>", "<|eom_id|>",
                                                                           "<|end_of_text|>")}
  assert render(conv, LLAMA3, template="auto") == render(conv, LLAMA3, template="llama3")  # auto: its own
  assert stop_ids(LLAMA3, "auto") == stop_ids(LLAMA3, "llama3")


def test_template_errors():
  with pytest.raises(ValueError, match="needs special token"):
    render(CONV, TOK, template="chatml")
  with pytest.raises(ValueError, match="unknown chat template"):
    render(CONV, TOK, template="vicuna")
  tool_conv = [{"role": "user", "content": "x"},
               {"role": "assistant", "content": [{"type": "python", "text": "1"}]}]
  with pytest.raises(InvalidConversation, match="unsupported_part"):
    render(tool_conv, CHATML, template="chatml")
  with pytest.raises(ValueError, match="none of the chat templates"):
    detect_template(ByteTokenizer(("<|x|>",)))


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(str.strip)


@st.composite
def conversations(draw):
  turns = draw(st.integers(1, 4))
  conv = [{"role": "system", "content": draw(text)}] if draw(st.booleans()) else []
  for _ in range(turns):
    conv += [{"role": "user", "content": draw(text)}, {"role": "assistant", "content": draw(text)}]
  return conv


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(conversations(), st.integers(1, 200))
def test_render_invariants(conv, max_len):
  ids, mask = render(conv, TOK)
  assert len(ids) == len(mask)
  want = "".join(f"{m['content']}<|assistant_end|>" for m in conv if m["role"] == "assistant")
  assert TOK.decode([i for i, m in zip(ids, mask) if m]) == want  # loss exactly on assistant replies
  assert render_for_completion(conv, TOK) == ids[:len(render_for_completion(conv, TOK))]
  first_reply = next(i for i, m in enumerate(conv) if m["role"] == "assistant")
  try:
    cut, cut_mask = render(conv, TOK, max_len=max_len)
  except InvalidConversation as e:  # skipped only when not even the first exchange fits
    assert e.reason == "too_long" and len(render(conv[:first_reply + 1], TOK)[0]) > max_len
    return
  assert len(cut) <= max_len or cut == ids
  assert ids[:len(cut)] == cut and mask[:len(cut)] == cut_mask and cut[-1] == S["<|assistant_end|>"]
