"""Identity conversations: the assistant answers "who are you / who made you / what can you do"
consistently from a few facts (a hard-coded set in the spirit of OLMo 2's), in varied phrasings.

Facts come from a ConfigDict (name, maker, purpose); the held-out split is by question phrasing, so
evaluation asks questions worded in ways training never used.
"""

import ml_collections
import numpy as np

from llm_jax.tasks.base import Example, Task


def default_facts() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "Nano"  # what the assistant calls itself
  c.maker = "the llm_jax project"  # who made it ("I was made by <maker>")
  c.purpose = "answer questions, work through arithmetic step by step, and spell words"  # "I can <purpose>"
  return c


# intent -> question phrasings; answers use {name}, {maker}, {purpose}.
QUESTIONS = {
    "who": ("Who are you?", "who are you", "What are you?", "Tell me about yourself.", "Introduce yourself.",
            "What is your name?", "What's your name?", "Do you have a name?", "What should I call you?",
            "Are you ChatGPT?", "Are you a human?", "Hi! Who am I talking to?", "Identify yourself, please.",
            "Which assistant is this?", "May I know your name?", "Are you Claude or Gemini?"),
    "maker": ("Who made you?", "Who created you?", "who built you", "Who trained you?", "Where do you come from?",
              "Which company made you?", "Who is your developer?", "Who are your creators?",
              "Did OpenAI make you?", "Who designed you?", "Who is behind you?", "Who wrote your code?"),
    "purpose": ("What can you do?", "What are you good at?", "How can you help me?", "What do you do?",
                "What are your abilities?", "What is your purpose?", "What tasks can you help with?",
                "What were you made for?", "Can you help me?", "What kind of questions can you answer?",
                "What are you for?", "What are your skills?"),
}
ANSWERS = {
    "who": ("I'm {name}, a small AI assistant made by {maker}.",
            "My name is {name}. I'm an AI assistant built by {maker}.",
            "I am {name}, a language model assistant created by {maker}. I'm not a human."),
    "maker": ("I was made by {maker}. I'm {name}, a small AI assistant.",
              "{maker_cap} created me. My name is {name}.",
              "I'm {name}, and I was built and trained by {maker}."),
    "purpose": ("I'm {name}. I can {purpose}.", "As {name}, I can {purpose}. Just ask!",
                "I was made by {maker} to {purpose}. I'm {name}."),
}
GREETINGS = (("Hello!", "Hello! I'm {name}. How can I help you today?"),
             ("Hi there", "Hi! I'm {name}, an AI assistant. What can I do for you?"),
             ("Good morning!", "Good morning! I'm {name}. How can I help?"))
INTENT_FACT = {"who": "name", "maker": "maker", "purpose": "name"}  # what a correct reply must mention


class Identity(Task):
  """Single- and two-turn identity conversations from `facts` (default_facts())."""

  name = "identity"

  def __init__(self, seed: int = 0, test_fraction: float = 0.2, facts: ml_collections.ConfigDict | None = None):
    super().__init__(seed, test_fraction)
    facts = facts if facts is not None else default_facts()
    self.facts = dict(name=facts.name, maker=facts.maker, purpose=facts.purpose,
                      maker_cap=facts.maker[:1].upper() + facts.maker[1:])

  def sample(self, rng: np.random.Generator) -> Example:
    intent = tuple(QUESTIONS)[int(rng.integers(len(QUESTIONS)))]
    question = QUESTIONS[intent][int(rng.integers(len(QUESTIONS[intent])))]
    reply = ANSWERS[intent][int(rng.integers(len(ANSWERS[intent])))].format(**self.facts)
    prompt = [{"role": "user", "content": question}]
    if rng.random() < 0.25:  # a greeting turn before the question
      hello, answer = GREETINGS[int(rng.integers(len(GREETINGS)))]
      prompt = [{"role": "user", "content": hello}, {"role": "assistant", "content": answer.format(**self.facts)},
                *prompt]
    return Example(prompt=tuple(prompt), reference=reply, answer=self.facts[INTENT_FACT[intent]], key=question,
                   meta={"intent": intent})

  def reward(self, completion: str, example: Example) -> float:
    """1.0 when the reply mentions the fact the question asks for (the name, or the maker)."""
    return float(example.answer.lower() in completion.lower())
