"""Example reviews shown under the text box: one of each kind a sentiment model finds easy or hard."""

from __future__ import annotations

_LONG_REVIEW = " ".join(
    [
        "I went into this film knowing almost nothing about it, which in hindsight was the best way to see it.",
        "The opening twenty minutes are slow, deliberately so, as the director takes his time introducing a",
        "small coastal town, a family that has run the same ferry for three generations, and the quiet",
        "resentment between two brothers who both expected to inherit it. Some viewers will find this",
        "patience frustrating; I found it rewarding, because every small detail planted early pays off later.",
        "The cinematography deserves special mention. The grey light over the harbour, the way the camera",
        "lingers on hands tying ropes or counting coins, the long shots of the ferry crossing at dusk: it all",
        "builds an atmosphere that is melancholy without ever becoming depressing. The score is sparse, mostly",
        "a single cello, and it is used sparingly enough that when it swells in the final act it genuinely hurts.",
        "The performances are the real reason to watch. The older brother is played with a stiff, wounded",
        "dignity that slowly cracks, and there is a scene in a kitchen, late at night, where he finally says",
        "what he has been holding back for the whole film. No music, no cuts, just two actors and a table, and",
        "it is one of the most honest scenes I have seen in years. The younger brother is harder to like, which",
        "is the point, and the actor never asks for sympathy he has not earned. Their mother, in only four or",
        "five scenes, steals every one of them with a dry humour that keeps the film from drowning in its own",
        "seriousness. It is not perfect. A subplot involving a developer who wants to buy the harbour feels",
        "like it belongs to a different, more conventional movie, and the character exists mainly to give the",
        "brothers something to argue about. The middle section drags, and I think fifteen minutes could have",
        "been cut without losing anything important. There is also a dream sequence that I did not understand",
        "and that the film never returns to, which left me wondering whether something was lost in the edit.",
        "A couple of lines of dialogue are overwritten, the kind of speeches nobody actually makes, and they",
        "stand out because the rest of the writing is so restrained. But these are small complaints about a",
        "film that gets the big things right. It understands how families keep score, how love and resentment",
        "can live in the same gesture, and how a place can hold people long after it has stopped being good",
        "for them. The ending is quiet and open, and it does not tie everything up, but it felt earned rather",
        "than evasive. I walked out thinking about my own family, which is about the highest praise I can give.",
        "If you have the patience for a slow, careful drama with no villains and no easy answers, seek this one",
        "out. Watch it on the biggest screen you can find, turn the lights off, and put your phone in another",
        "room. It asks for your attention and it repays it many times over. I have already recommended it to",
        "three friends, and I am planning to see it again next week with my brother, which feels appropriate.",
        "Eight out of ten, and easily one of the best films I have seen this year, flaws and all.",
    ]
)

# (label shown on the example button, review text)
EXAMPLES: list[tuple[str, str]] = [
    (
        "Clear positive",
        "An absolute delight from start to finish. The acting is superb, the script is sharp and funny, "
        "and the ending moved me to tears. One of the best films I have seen in years.",
    ),
    (
        "Clear negative",
        "A complete waste of two hours. The plot makes no sense, the dialogue is painful and the lead "
        "actor looks bored in every scene. I want my money back.",
    ),
    (
        "Sarcastic",
        "Oh great, another two-hour masterpiece where nothing happens. I especially loved the part where "
        "I checked my watch for the fifth time. Truly a gift to cinema.",
    ),
    (
        "Mixed",
        "The visuals are stunning and the soundtrack is excellent, but the story is thin and the second "
        "half drags badly. Worth seeing once, on a big screen, with low expectations.",
    ),
    ("Very short", "Meh."),
    ("Very long (split into windows)", _LONG_REVIEW),
]


# What the start-up measurement times (`timing_reviews`): a file of 16 reviews whose lengths in words are the
# 16 evenly spaced quantiles of IMDb's 25,000 test reviews (the midpoints of 16 equal shares), so that engines
# are compared on the batched windows a real upload gives rather than on the six examples above.
TIMING_WORDS = (53, 85, 110, 121, 130, 140, 151, 165, 180, 200, 223, 256, 299, 361, 457, 680)


def timing_reviews(words: tuple[int, ...] = TIMING_WORDS) -> list[str]:
    """Reviews of the given lengths, cut from the example reviews' words (repeated where a review is longer)."""
    pool = " ".join(text for _, text in EXAMPLES).split()
    return [" ".join(pool[(start + i) % len(pool)] for i in range(n)) for start, n in
            zip(range(0, 37 * len(words), 37), words)]  # fmt: skip
