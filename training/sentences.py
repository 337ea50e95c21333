"""Sentences for the lip-sync data set: a small random grammar with a broad vocabulary.

Random combinations cover far more phoneme contexts than a handful of fixed sentences, and a
seed makes the list repeatable; training and held-out sets use different seeds.
"""

from __future__ import annotations

import random

SUBJECTS = [
    "the old fisherman",
    "my brother",
    "a quiet girl",
    "the museum guide",
    "our teacher",
    "the tired pilot",
    "a young doctor",
    "the baker",
    "everybody",
    "the small robot",
    "Peter",
    "Maria",
    "the woman next door",
    "a famous chef",
    "the shop assistant",
    "the children",
    "my grandmother",
    "the bus driver",
    "a curious fox",
    "the new manager",
]
VERBS = [
    "bought",
    "painted",
    "forgot",
    "carried",
    "watched",
    "borrowed",
    "pushed",
    "found",
    "opened",
    "washed",
    "explained",
    "measured",
    "threw",
    "fixed",
    "described",
    "moved",
    "enjoyed",
    "checked",
    "booked",
    "played with",
    "looked for",
    "smiled at",
    "thought about",
]
OBJECTS = [
    "a blue umbrella",
    "the heavy box",
    "seven apples",
    "a strange map",
    "the broken watch",
    "two cups of coffee",
    "a yellow bicycle",
    "the morning paper",
    "a warm jacket",
    "the biggest pumpkin",
    "an empty bottle",
    "the photos",
    "a bowl of soup",
    "the violin",
    "a wooden chair",
    "the window",
    "a pair of shoes",
    "the cheese sandwich",
    "a thick book",
    "the garden hose",
    "a bag of oranges",
    "the computer",
    "her phone",
    "the moon",
]
PLACES = [
    "in the kitchen",
    "at the station",
    "near the river",
    "behind the school",
    "on Tuesday",
    "before lunch",
    "after the storm",
    "in the park",
    "at the airport",
    "under the bridge",
    "by the sea",
    "during the movie",
    "at midnight",
    "in Boston",
    "on the top floor",
    "without a word",
    "very slowly",
    "with great care",
    "for an hour",
    "twice a week",
]
QUESTIONS = [
    "Where is the nearest pharmacy?",
    "How much does the ticket cost?",
    "Could you open the window, please?",
    "What time does the museum close?",
    "Would you like some tea or coffee?",
    "Why is the sky blue?",
    "Can I pay with my card?",
    "Who wants to go first?",
    "Is there a bus to the city centre?",
    "How long will it take?",
]
EXTRAS = [
    "Thank you very much.",
    "Good morning, welcome to the exhibition.",
    "Please wait here.",
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "Oh, really? That's wonderful news!",
    "Hmm, let me think about that for a moment.",
    "Yes. No. Maybe later.",
    "One, two, three, four, five, six, seven, eight, nine, ten.",
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore.",
    "Peter Piper picked a peck of pickled peppers.",
    "We were away a year ago.",
]
LINKS = ["and then", "because", "but", "while", "so", "although"]


def sentence(rng: random.Random) -> str:
    """One random sentence."""
    roll = rng.random()
    if roll < 0.1:
        return rng.choice(QUESTIONS)
    if roll < 0.2:
        return rng.choice(EXTRAS)

    def clause() -> str:
        return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"

    text = clause()
    if rng.random() < 0.6:
        text += " " + rng.choice(PLACES)
    if rng.random() < 0.35:
        text += ", " + rng.choice(LINKS) + " " + clause()
    end = rng.choice([".", ".", ".", "!", "?"])
    return text[0].upper() + text[1:] + end


def sentences(n: int, seed: int) -> list[str]:
    """``n`` random sentences from ``seed``."""
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(n)]
