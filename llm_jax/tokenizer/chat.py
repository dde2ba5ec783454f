"""The one chat render every stage uses (SFT, RL, inference, eval): conversation -> (ids, loss_mask).

A conversation is a list of OpenAI-style messages (or {"messages": [...]}):
  {"role": "system" | "user" | "assistant", "content": str}
Assistant content may also be a list of parts {"type": t, "text": str}, t in text, python,
python_output, search, search_output (a tool output must follow its call).
Order: an optional system message first, then user and assistant alternating, starting with user.

Templates (special ids always come from the tokenizer, never from text):
  llm_jax  <|bos|> <|system_start|>..<|system_end|> <|user_start|>..<|user_end|>
           <|assistant_start|>..<|assistant_end|>; tool calls <|python_start|>..<|python_end|>
           (<|search_start|>..<|search_end|>), tool outputs <|output_start|>..<|output_end|>
  chatml   <|im_start|>role\\n..<|im_end|>\\n (Qwen, SmolLM); no BOS; text parts only
  llama3   <|begin_of_text|> <|start_header_id|>role<|end_header_id|>\\n\\n..<|eot_id|> (content
           stripped, as Llama 3's template does; no default system prompt); text parts only

loss_mask[i] = 1 where ids[i] is an assistant token the model must produce: its text, its tool
calls, and the closing <|assistant_end|> / <|im_end|> / <|eot_id|>. The assistant header, all other
roles and tool outputs (forced in by the engine) are 0. When training, token i is a target of
position i - 1, so the pipeline uses loss_mask[1:] with ids[1:].

Truncation (max_len): whole turns are dropped from the end, cutting after the last assistant message
that still fits; if not even the first assistant message fits, the conversation is skipped
(`InvalidConversation` with reason "too_long").
"""

from collections.abc import Sequence

from llm_jax.tokenizer import special
from llm_jax.tokenizer.base import Tokenizer

ROLES = ("system", "user", "assistant")
TOOL_CALLS = {"python": (special.PYTHON_START, special.PYTHON_END),
              "search": (special.SEARCH_START, special.SEARCH_END)}
TOOL_OUTPUTS = {"python_output": "python", "search_output": "search"}
PART_TYPES = ("text",) + tuple(TOOL_CALLS) + tuple(TOOL_OUTPUTS)
TEMPLATES = ("llm_jax", "chatml", "llama3")
_TOOL_TOKENS = (special.PYTHON_START, special.PYTHON_END, special.SEARCH_START, special.SEARCH_END,
                special.OUTPUT_START, special.OUTPUT_END)
_TEMPLATE_TOKENS = {
    "llm_jax": (special.BOS, special.SYSTEM_START, special.SYSTEM_END, special.USER_START, special.USER_END,
                special.ASSISTANT_START, special.ASSISTANT_END) + _TOOL_TOKENS,
    "chatml": ("<|im_start|>", "<|im_end|>"),
    "llama3": ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
}
Message = tuple[str, list[tuple[str, str]]]  # (role, [(part type, text)])


class InvalidConversation(ValueError):
  """A conversation that cannot be rendered; `reason` is a short code for counting skips."""

  def __init__(self, reason: str, detail: str):
    super().__init__(f"{reason}: {detail}")
    self.reason = reason


def normalize(conversation) -> list[Message]:
  """Validated (role, parts) messages; raises InvalidConversation naming the first problem."""
  if isinstance(conversation, dict):
    conversation = conversation.get("messages")
  if not isinstance(conversation, (list, tuple)) or not conversation:
    raise InvalidConversation("not_a_conversation", "expected a non-empty list of messages")
  out = []
  for i, m in enumerate(conversation):
    if not isinstance(m, dict) or "role" not in m or "content" not in m:
      raise InvalidConversation("bad_message", f"message {i} is not a dict with role and content")
    role = m["role"]
    if role not in ROLES:
      raise InvalidConversation("unknown_role", f"message {i} has role {role!r}; expected one of {ROLES}")
    want = "user" if (i - int(conversation[0]["role"] == "system")) % 2 == 0 else "assistant"
    if role != want and not (i == 0 and role == "system"):
      raise InvalidConversation("role_order", f"message {i} is {role!r} where {want!r} was expected "
                                "(optional system first, then user/assistant alternating)")
    out.append((role, _parts(m["content"], role, i)))
  return out


def _parts(content, role: str, i: int) -> list[tuple[str, str]]:
  if isinstance(content, str):
    parts = [("text", content)]
  elif isinstance(content, (list, tuple)) and content:
    parts = []
    for p in content:
      if not isinstance(p, dict) or p.get("type") not in PART_TYPES or not isinstance(p.get("text"), str):
        raise InvalidConversation("bad_part", f"message {i} has a part that is not {{type in {PART_TYPES}, "
                                  f"text: str}}: {str(p)[:80]}")
      parts.append((p["type"], p["text"]))
  else:
    raise InvalidConversation("bad_content", f"message {i} content must be a string or a list of parts")
  for k, (kind, text) in enumerate(parts):
    if kind != "text" and role != "assistant":
      raise InvalidConversation("bad_part", f"message {i} ({role}) has a {kind!r} part; only assistants use tools")
    if kind in TOOL_OUTPUTS and (k == 0 or parts[k - 1][0] != TOOL_OUTPUTS[kind]):
      raise InvalidConversation("bad_part", f"message {i}: a {kind!r} part must follow a {TOOL_OUTPUTS[kind]!r} call")
    if not text.strip() and kind not in TOOL_OUTPUTS:
      raise InvalidConversation("empty_content", f"message {i} ({role}) has empty content")
  return parts


def detect_template(tokenizer: Tokenizer) -> str:
  """The template whose special tokens this tokenizer has (ours first)."""
  for name in TEMPLATES:
    if all(tokenizer.has_special(t) for t in _TEMPLATE_TOKENS[name][:4]):
      return name
  raise ValueError("the tokenizer has none of the chat templates' special tokens "
                   f"({', '.join(TEMPLATES)}); a chat model needs them")


def resolve_template(tokenizer: Tokenizer, template: str) -> str:
  """`template`, with "auto" replaced by the tokenizer's own (detect_template)."""
  return detect_template(tokenizer) if template == "auto" else template


def _ids(tokenizer: Tokenizer, template: str) -> dict[str, int]:
  if template not in TEMPLATES:
    raise ValueError(f"unknown chat template {template!r}; choose auto or one of {TEMPLATES}")
  names = _TEMPLATE_TOKENS[template]
  # tool tokens are needed only by conversations that use tools (checked in _Renderer._tool)
  missing = [t for t in names if not tokenizer.has_special(t) and t not in _TOOL_TOKENS]
  if missing:
    raise ValueError(f"chat template {template!r} needs special token(s) {', '.join(missing)}, which this "
                     f"tokenizer lacks; use the template matching it (detect_template)")
  return {t: tokenizer.special_id(t) for t in names if tokenizer.has_special(t)}


def stop_ids(tokenizer: Tokenizer, template: str = "llm_jax") -> tuple[int, ...]:
  """Ids that end an assistant reply under `template` (plus the tokenizer's document boundaries)."""
  template = resolve_template(tokenizer, template)
  _ids(tokenizer, template)  # fails clearly when the tokenizer lacks the template's tokens
  ends = {"llm_jax": (special.ASSISTANT_END, special.BOS), "chatml": ("<|im_end|>",),
          "llama3": ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")}[template]
  out = [tokenizer.special_id(t) for t in ends if tokenizer.has_special(t)] + [tokenizer.eos_id]
  return tuple(dict.fromkeys(i for i in out if i is not None))


class _Renderer:
  """Per-message (ids, mask) chunks under one template."""

  def __init__(self, tokenizer: Tokenizer, template: str):
    template = resolve_template(tokenizer, template)
    self.tok, self.template, self.s = tokenizer, template, _ids(tokenizer, template)

  def prefix(self) -> list[int]:
    if self.template == "chatml":
      return []
    return [self.s[special.BOS if self.template == "llm_jax" else "<|begin_of_text|>"]]

  def header(self, role: str) -> list[int]:
    """Ids that open a message of `role` (what a completion prompt ends with for the assistant)."""
    if self.template == "llm_jax":
      return [self.s[f"<|{role}_start|>"]]
    if self.template == "chatml":
      return [self.s["<|im_start|>"]] + self.tok.encode(f"{role}\n")
    return [self.s["<|start_header_id|>"]] + self.tok.encode(role) + [self.s["<|end_header_id|>"]] + \
        self.tok.encode("\n\n")

  def message(self, role: str, parts: list[tuple[str, str]]) -> tuple[list[int], list[int]]:
    ids, mask = list(self.header(role)), [0] * len(self.header(role))
    learn = int(role == "assistant")

    def add(new: Sequence[int], m: int):
      ids.extend(new)
      mask.extend([m] * len(new))

    for kind, text in parts:
      if self.template == "llama3":
        text = text.strip()
      if kind == "text":
        add(self.tok.encode(text), learn)
        continue
      if self.template != "llm_jax":
        raise InvalidConversation("unsupported_part", f"template {self.template!r} has no tool tokens "
                                  f"for a {kind!r} part; use template 'llm_jax'")
      if kind in TOOL_CALLS:
        start, end = TOOL_CALLS[kind]
        add([self._tool(start)] + self.tok.encode(text) + [self._tool(end)], 1)
      else:  # tool output: forced in at inference, never learned
        add([self._tool(special.OUTPUT_START)] + self.tok.encode(text) + [self._tool(special.OUTPUT_END)], 0)
    if self.template == "llm_jax":
      add([self.s[f"<|{role}_end|>"]], learn)
    elif self.template == "chatml":
      add([self.s["<|im_end|>"]], learn)
      add(self.tok.encode("\n"), 0)
    else:
      add([self.s["<|eot_id|>"]], learn)
    return ids, mask

  def _tool(self, token: str) -> int:
    if token not in self.s:
      raise ValueError(f"this tokenizer lacks the tool token {token}; tool parts need it")
    return self.s[token]


def render(conversation, tokenizer: Tokenizer, *, template: str = "llm_jax",
           max_len: int | None = None) -> tuple[list[int], list[int]]:
  """(ids, loss_mask) of a whole conversation for training; see the module docstring for the rules."""
  messages = normalize(conversation)
  r = _Renderer(tokenizer, template)
  ids, mask = r.prefix(), [0] * len(r.prefix())
  chunks = [r.message(role, parts) for role, parts in messages]
  keep = len(chunks)
  if max_len is not None and len(ids) + sum(len(c[0]) for c in chunks) > max_len:
    total, keep = len(ids), 0
    for i, (chunk_ids, _) in enumerate(chunks):
      total += len(chunk_ids)
      if total > max_len:
        break
      if messages[i][0] == "assistant":
        keep = i + 1
    if keep == 0:
      first = next((i for i, m in enumerate(messages) if m[0] == "assistant"), None)
      if first is not None:
        need = len(ids) + sum(len(c[0]) for c in chunks[:first + 1])
        raise InvalidConversation("too_long", f"the first exchange needs {need} tokens > max_len={max_len}")
  for chunk_ids, chunk_mask in chunks[:keep]:
    ids += chunk_ids
    mask += chunk_mask
  if not any(mask):
    raise InvalidConversation("no_assistant", "nothing to learn: the loss mask is all zero (no assistant reply)")
  return ids, mask


def render_for_completion(conversation, tokenizer: Tokenizer, *, template: str = "llm_jax") -> list[int]:
  """Prompt ids ending with the assistant header (<|assistant_start|>), to generate the next reply.
  A final assistant message (e.g. a reference answer) is dropped; the last one left must be the user's."""
  messages = normalize(conversation)
  if messages[-1][0] == "assistant":
    messages = messages[:-1]
  if not messages or messages[-1][0] != "user":
    raise InvalidConversation("role_order", "a completion prompt must end with a user message")
  r = _Renderer(tokenizer, template)
  ids = r.prefix()
  for role, parts in messages:
    ids += r.message(role, parts)[0]
  return ids + r.header("assistant")
