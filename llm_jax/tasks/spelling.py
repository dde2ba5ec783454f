"""Spelling tasks with worked letter-by-letter answers: spell a word, count a letter in a word.

Tokens hide letters from a model ("strawberry" may be one token), so the reference replies spell the
word out one letter per line and keep a running count. The held-out split is by word: test words
never appear in training.
"""

import numpy as np

from llm_jax.tasks.base import Example, Task, extract_marked

WORDS = tuple("""
strawberry banana apple orange cherry lemon mango grape peach pear melon papaya coconut raspberry
blueberry pineapple apricot kiwi tomato potato carrot onion garlic pepper celery lettuce cabbage
pumpkin broccoli spinach mushroom avocado cucumber radish bread butter cheese coffee pizza pasta
noodle cookie muffin pancake sandwich chocolate vanilla caramel honey sugar cinnamon mississippi
bookkeeper balloon committee success address assessment parallel necessary occasion embarrass
accommodate millennium tomorrow possession recommend beginning believe calendar cemetery definitely
grammar library mirror rhythm schedule separate tattoo village weird yellow zipper bubble puzzle
giraffe elephant kangaroo penguin dolphin octopus squirrel rabbit turtle tiger zebra monkey donkey
parrot hippopotamus crocodile butterfly caterpillar mosquito spider beetle falcon eagle sparrow
pelican raccoon hamster kitten puppy horse cattle sheep goose llama alpaca koala panda camel walrus
river mountain valley desert island forest meadow canyon volcano glacier ocean lagoon harbor
thunder lightning rainbow blizzard hurricane tornado drizzle sunshine weather season summer winter
autumn spring morning evening midnight yesterday window kitchen bedroom hallway ceiling staircase
cellar balcony garden fence bottle pillow blanket mattress carpet curtain hammer scissors
umbrella lantern candle mattress keyboard computer telephone printer battery engine wheel bicycle
scooter tractor airplane rocket submarine helicopter train bridge tunnel street letter barrel
coffee kettle teapot saucer spoon button pocket collar jacket sweater mitten slipper necklace
banner arrow pebble marble pepperoni spaghetti broccoli referee possess aardvark bookshelf
""".split())
LETTER_QUESTIONS = ("How many {q}{letter}{q} are in {word}?", "How many times does the letter {q}{letter}{q} "
                    "appear in {q}{word}{q}?", "Count the letter {q}{letter}{q} in the word {word}.",
                    "how many {letter}s are there in {word}")
SPELL_QUESTIONS = ("Spell the word {word}.", "How do you spell {q}{word}{q}?", "Spell {word} letter by letter.",
                   "Can you spell {word} for me?")


class Spelling(Task):
  """`kind` "both" mixes spell-the-word and count-the-letter questions; "spell" or "count" picks one."""

  name = "spelling"

  def __init__(self, seed: int = 0, test_fraction: float = 0.2, kind: str = "both",
               words: tuple[str, ...] = WORDS):
    super().__init__(seed, test_fraction)
    if kind not in ("both", "spell", "count"):
      raise ValueError(f"spelling kind {kind!r} is not one of both, spell, count")
    self.kind, self.words = kind, tuple(dict.fromkeys(words))

  def sample(self, rng: np.random.Generator) -> Example:
    word = self.words[int(rng.integers(len(self.words)))]
    q = ("'", '"', "")[int(rng.integers(3))]
    count = self.kind == "count" or (self.kind == "both" and rng.random() < 0.6)
    if not count:
      question = SPELL_QUESTIONS[int(rng.integers(len(SPELL_QUESTIONS)))].format(word=word, q=q)
      answer = "-".join(word)
      reference = (f"{word} has {len(word)} letters:\n" + "\n".join(f"{i + 1}. {c}" for i, c in enumerate(word)) +
                   f"\n#### {answer}")
      return Example(prompt=({"role": "user", "content": question},), reference=reference, answer=answer,
                     key=word, meta={"kind": "spell"})
    # Mostly a letter of the word, sometimes any letter (answers of 0 matter too).
    pool = word if rng.random() < 0.7 else "abcdefghijklmnopqrstuvwxyz"
    letter = pool[int(rng.integers(len(pool)))]
    question = LETTER_QUESTIONS[int(rng.integers(len(LETTER_QUESTIONS)))].format(word=word, letter=letter, q=q)
    lines, n = [f"Spelling {word} letter by letter and counting '{letter}':"], 0
    for i, c in enumerate(word):
      n += c == letter
      lines.append(f"{i + 1}. {c}" + (f" <- '{letter}' number {n}" if c == letter else ""))
    lines.append(f"So '{letter}' appears {n} time{'s' * (n != 1)} in {word}.\n#### {n}")
    return Example(prompt=({"role": "user", "content": question},), reference="\n".join(lines), answer=str(n),
                   key=word, meta={"kind": "count", "letter": letter})

  def reward(self, completion: str, example: Example) -> float:
    got = extract_marked(completion)
    return float(got is not None and got.replace(" ", "").lower() == example.answer)
