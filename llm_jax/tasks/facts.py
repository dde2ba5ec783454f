"""A synthetic encyclopedia of made-up rivers, mountains, towns and inventors, for the search tool.

Names are invented from syllables, so a model cannot know the facts: it has to search. Every entity is
one short document ("title" line, then a few sentences) and yields numeric questions (length, height,
year, population) with the query a searcher would type. The collection depends only on its own seed.
"""

import dataclasses
import os
import re

import numpy as np

SYLLABLES = ("ka", "zor", "vel", "mi", "tan", "dra", "lu", "quen", "bo", "ris", "sha", "tor", "el", "vin", "gal",
             "mor", "pa", "nex", "ul", "dor", "fen", "ith", "ko", "sar", "bel", "gro", "an", "wy", "ost", "rem")
REGIONS = ("the northern highlands", "the Velmar valley", "the eastern plains", "the Ostrin coast",
           "the southern marshes", "the Kaldra basin", "the western lakes")
THINGS = ("steam loom", "glass kiln", "water clock", "printing drum", "wind pump", "brass telescope")


@dataclasses.dataclass(frozen=True)
class Fact:
  key: str  # entity and attribute, e.g. "Zorvel River:length"
  question: str
  query: str  # what the assistant searches for
  answer: str  # a number, as text
  sentence: str  # the document sentence that states it (the reply paraphrases it)


def _name(rng: np.random.Generator, parts: int) -> str:
  return "".join(SYLLABLES[int(i)] for i in rng.integers(len(SYLLABLES), size=parts)).capitalize()


def _pick(rng: np.random.Generator, options):
  return options[int(rng.integers(len(options)))]


def _entity(kind: str, rng: np.random.Generator, name: str, other: str) -> tuple[str, list[str], list[tuple]]:
  """(title, sentences, [(attribute, answer, sentence index, questions)])."""
  region = _pick(rng, REGIONS)
  if kind == "river":
    title, km = f"{name} River", int(rng.integers(20, 3000))
    return title, [f"The {title} is a river in {region}.", f"It is {km} km long and flows into the {other} Sea."], [
        ("length", km, 1, (f"How long is the {title}?", f"What is the length of the {title} in km?"))]
  if kind == "mountain":
    title, m, year = f"Mount {name}", int(rng.integers(800, 8000)), int(rng.integers(1700, 1990))
    return title, [f"{title} is a mountain in {region}.", f"It is {m} metres high.",
                   f"It was first climbed in {year} by {other} climbers."], [
        ("height", m, 1, (f"How high is {title}?", f"What is the height of {title} in metres?")),
        ("first climbed", year, 2, (f"In which year was {title} first climbed?", f"When was {title} first climbed?"))]
  if kind == "town":
    people, year = int(rng.integers(300, 900_000)), int(rng.integers(900, 1950))
    return name, [f"{name} is a town in {region}.", f"It has a population of {people} people.",
                  f"It was founded in {year} by settlers from {other}."], [
        ("population", people, 1, (f"What is the population of {name}?", f"How many people live in {name}?")),
        ("founded", year, 2, (f"When was {name} founded?", f"In which year was the town of {name} founded?"))]
  first, born = _name(rng, 2), int(rng.integers(1600, 1950))
  title, built, thing = f"{first} {name}", born + int(rng.integers(18, 60)), _pick(rng, THINGS)
  return title, [f"{title} was an inventor from {other}.", f"{first} {name} was born in {born}.",
                 f"In {built}, {first} {name} built the first {thing}."], [
      ("born", born, 1, (f"In which year was {title} born?", f"When was the inventor {title} born?")),
      ("invention", built, 2, (f"In which year did {title} build the first {thing}?",
                               f"When did {title} build the first {thing}?"))]


def encyclopedia(seed: int = 0, num_entities: int = 200) -> tuple[list[tuple[str, str]], list[Fact]]:
  """([(title, text)] documents, [Fact]) of `num_entities` made-up entities (unique titles)."""
  rng = np.random.default_rng([seed, 7])
  docs, facts, titles = [], [], set()
  while len(docs) < num_entities:
    kind = _pick(rng, ("river", "mountain", "town", "inventor"))
    title, sentences, attributes = _entity(kind, rng, _name(rng, int(rng.integers(2, 4))), _name(rng, 2))
    if title in titles:
      continue
    titles.add(title)
    docs.append((title, " ".join(sentences)))
    for attribute, answer, index, questions in attributes:
      facts += [Fact(f"{title}:{attribute}", q, f"{title} {attribute}", str(answer), sentences[index])
                for q in questions]
  return docs, facts


def document_text(title: str, body: str) -> str:
  """A document as stored: the title line, then the body (search.title_of reads the title back)."""
  return f"{title}\n{body}\n"


def write_documents(docs: list[tuple[str, str]], directory: str) -> str:
  """One .txt file per document in `directory`; returns the source spec that reads them back."""
  os.makedirs(directory, exist_ok=True)
  for i, (title, body) in enumerate(docs):
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    with open(os.path.join(directory, f"{i:05d}_{slug}.txt"), "w", encoding="utf-8") as f:
      f.write(document_text(title, body))
  return f"files:{os.path.join(directory, '*.txt')};clean=none"
