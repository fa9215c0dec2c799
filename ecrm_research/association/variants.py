"""Variants of one product: items that differ only by a colour or size word, or share a stock-code stem.

A rule such as ``ALARM CLOCK BAKELIKE RED ⇒ ALARM CLOCK BAKELIKE GREEN`` is strong (customers who
like the clock buy it in two colours) but it is no cross-sell: the two items are *variants of one
product*, substitutes rather than complements, and a merchandiser would not put one on the other's
product page as "goes well with". This module finds such pairs so that :func:`cross_sell_table`
can set them aside (or flag them).

Two items are variants of one product (:func:`variant_family`) when

1. **their descriptions are the same apart from colour or size words**: the words of
   :data:`COLOUR_WORDS` and :data:`SIZE_WORDS` (and a shade or size modifier such as ``LIGHT``,
   ``DARK``, ``PASTEL`` or ``EXTRA`` right before one of them, :data:`MODIFIER_WORDS`) are removed,
   and what is left — the *family words*, compared as a bag of words, case and punctuation ignored —
   is the same and not empty. ``PINK REGENCY TEACUP AND SAUCER`` and ``GREEN REGENCY TEACUP AND
   SAUCER`` are variants (family ``REGENCY TEACUP AND SAUCER``); ``RED RETROSPOT CAKE STAND`` and
   ``RED RETROSPOT CHARLOTTE BAG`` are not (``RETROSPOT CAKE STAND`` ≠ ``RETROSPOT CHARLOTTE
   BAG``); or
2. **their stock codes share a stem** (:func:`code_stem`): the digits of a code made of digits and a
   letter suffix of at most three letters, as Online Retail's ``85123A``/``85123B`` (stem
   ``85123``) or ``85099B``/``85099F`` (the jumbo bag in red retrospot and in strawberry print);
   a bare code is the stem of its lettered variants (``47566`` and ``47566B``). Neighbouring numbers
   (``22726``/``22727``) are different products, and codes that do not start with digits
   (``P001``) have no stem.

The item labels are whatever the baskets carry. A description is the label itself (minus the
``" [code]"`` that :func:`ecrm_research.prep.baskets.product_labels` appends to a name shared by
several products) unless a ``descriptions`` lookup (label → description) is given, e.g. when the
items are product ids. A code is taken from a ``codes`` lookup (label → product id;
:func:`item_codes` builds it from a products table), else from a ``" [code]"`` suffix, else from the
label when the label itself is a stock code.

The word lists are the one place to extend (English retail vocabulary; a shop in another language
adds its own words here). Words that are also flavours, scents or patterns (``ROSE``, ``LAVENDER``,
``MINT``, ``CHOCOLATE``) are deliberately not colours; their variants are found through the code
stem when the data have codes.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping

import pandas as pd

from ..exceptions import ParameterError, SchemaError

__all__ = ["COLOUR_WORDS", "SIZE_WORDS", "MODIFIER_WORDS", "family_words", "code_stem", "variant_family",
           "flag_variants", "item_codes"]

#: Colour words (upper case; British and American spellings). A description that differs from
#: another only by these (and :data:`SIZE_WORDS`) names a variant of the same product.
COLOUR_WORDS: frozenset[str] = frozenset({
    "RED", "GREEN", "BLUE", "PINK", "BLACK", "WHITE", "IVORY", "CREAM", "YELLOW", "ORANGE", "PURPLE",
    "VIOLET", "LILAC", "MAUVE", "BROWN", "GREY", "GRAY", "SILVER", "GOLD", "GOLDEN", "BRONZE", "COPPER",
    "TEAL", "TURQUOISE", "AQUA", "NAVY", "BEIGE", "TAUPE", "MAGENTA", "FUCHSIA", "KHAKI", "MAROON",
    "BURGUNDY", "CORAL", "SCARLET", "CRIMSON", "NATURAL", "MULTICOLOUR", "MULTICOLOURED", "MULTICOLOR",
    "MULTICOLORED",
})
#: Size words: a description that differs from another only by these names a variant.
SIZE_WORDS: frozenset[str] = frozenset({
    "SMALL", "SML", "MEDIUM", "MED", "LARGE", "LGE", "LRG", "MINI", "JUMBO", "GIANT", "BIG", "TINY",
    "XS", "XL", "XXL", "XXXL",
})
#: Shade and size modifiers, removed only right before a colour or size word (``LIGHT BLUE``,
#: ``EXTRA LARGE``); elsewhere they are family words (``T-LIGHT HOLDER``).
MODIFIER_WORDS: frozenset[str] = frozenset({
    "LIGHT", "DARK", "PALE", "PASTEL", "BRIGHT", "DEEP", "HOT", "BABY", "EXTRA",
})
_VARIANT_WORDS = COLOUR_WORDS | SIZE_WORDS
_TOKEN = re.compile(r"[^0-9A-Z]+")
_CODE_SUFFIX = re.compile(r"^(?P<name>.*\S)\s*\[(?P<code>[^\[\]]+)\]\s*$")
_STEM = re.compile(r"^(?P<stem>\d+)(?P<suffix>[A-Za-z]{0,3})$")


def family_words(description: str) -> tuple[str, ...]:
    """The family words of a description: its words without colour and size words.

    Parameters
    ----------
    description : str
        Product description (any case; punctuation and repeated spaces are ignored).

    Returns
    -------
    tuple of str
        Upper-case words in their order, without the words of :data:`COLOUR_WORDS` and
        :data:`SIZE_WORDS` and without a :data:`MODIFIER_WORDS` word that stands right before one.
        Empty when nothing else is left (a description that is only a colour has no family).

    Examples
    --------
    >>> family_words("Alarm clock Bakelike  light-blue")
    ('ALARM', 'CLOCK', 'BAKELIKE')
    >>> family_words("WHITE HANGING HEART T-LIGHT HOLDER")
    ('HANGING', 'HEART', 'T', 'LIGHT', 'HOLDER')
    """
    words = [w for w in _TOKEN.split(str(description).upper()) if w]
    keep = []
    for i, w in enumerate(words):
        if w in _VARIANT_WORDS:
            continue
        if w in MODIFIER_WORDS and i + 1 < len(words) and words[i + 1] in _VARIANT_WORDS:
            continue
        keep.append(w)
    return tuple(keep)


def _missing(value: object) -> bool:
    """None, NaN or pd.NA (a lookup without a value)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def code_stem(code: object) -> str | None:
    """The stem of a stock code: its digits when the code is digits plus at most three letters.

    ``code_stem("85123A") == code_stem("85123b") == code_stem("85123") == "85123"``; ``None`` for
    codes that do not start with digits or carry more than digits and a short letter suffix
    (``"P001"``, ``"DCGS0003"``, ``"gift_0001_10"``), and for missing codes.
    """
    if _missing(code):
        return None
    m = _STEM.match(str(code).strip())
    return m.group("stem") if m else None


class _ItemInfo:
    """What variant detection needs of one item label: its family words (sorted) and code."""

    __slots__ = ("family", "words", "same", "code", "stem")

    def __init__(self, label: Hashable, codes: Mapping | None, descriptions: Mapping | None):
        text = str(label)
        m = _CODE_SUFFIX.match(text)
        code = codes.get(label) if codes is not None else None
        if _missing(code) and m is not None:
            code = m.group("code").strip()
        if _missing(code) and _STEM.match(text.strip()):
            code = text.strip()  # the label is itself a stock code
        desc = descriptions.get(label) if descriptions is not None else None
        if _missing(desc):
            desc = m.group("name") if m is not None else text
        self.words = family_words(desc)
        self.same = tuple(sorted(w for w in _TOKEN.split(str(desc).upper()) if w))
        self.family = tuple(sorted(self.words))
        self.code = None if _missing(code) else str(code).strip()
        self.stem = code_stem(self.code)


def _shared_family(a: _ItemInfo, b: _ItemInfo) -> str:
    """Why two items are variants of one product ('' when they are not)."""
    if a.stem is not None and a.stem == b.stem and a.code is not None and a.code != b.code:
        return f"stock code stem {a.stem}"
    if a.family and a.family == b.family:
        return ("same description " if a.same == b.same else "colour/size of ") + " ".join(b.words)
    return ""


def variant_family(a: Hashable, b: Hashable, *, codes: Mapping | None = None,
                   descriptions: Mapping | None = None) -> str:
    """Are items ``a`` and ``b`` variants of one product? Returns why, or ``""``.

    Parameters
    ----------
    a, b : item labels
        As the baskets carry them (descriptions, ``"name [code]"``, or codes).
    codes : mapping, optional
        Item label → stock code (see :func:`item_codes`).
    descriptions : mapping, optional
        Item label → description (when the labels are codes).

    Returns
    -------
    str
        ``"stock code stem 85123"`` when the codes share a stem, ``"colour/size of <family
        words>"`` when the descriptions differ only by colour or size words, ``""`` otherwise (also
        for ``a == b``).

    Examples
    --------
    >>> variant_family("ALARM CLOCK BAKELIKE RED", "ALARM CLOCK BAKELIKE GREEN")
    'colour/size of ALARM CLOCK BAKELIKE'
    >>> variant_family("RED RETROSPOT CAKE STAND", "RED RETROSPOT CHARLOTTE BAG")
    ''
    >>> variant_family("85123A", "85123B"), variant_family("22726", "22727")
    ('stock code stem 85123', '')
    """
    if a == b:
        return ""
    return _shared_family(_ItemInfo(a, codes, descriptions), _ItemInfo(b, codes, descriptions))


def flag_variants(rules: pd.DataFrame, *, codes: Mapping | None = None,
                  descriptions: Mapping | None = None) -> pd.DataFrame:
    """Flag rules whose consequent is a variant of an item of its antecedent.

    Parameters
    ----------
    rules : DataFrame
        Rules with ``antecedents`` and ``consequents`` (itemsets), e.g. from
        :func:`association_rules`.
    codes, descriptions : mapping, optional
        See :func:`variant_family`.

    Returns
    -------
    DataFrame
        A copy of ``rules`` with ``same_product_family`` (bool: some consequent item is a variant
        of some antecedent item) and ``variant_of`` (why, e.g. ``"colour/size of ALARM CLOCK
        BAKELIKE"`` or ``"stock code stem 85099"``; ``""`` when the rule pairs different products).
        ``attrs`` are kept.
    """
    for col in ("antecedents", "consequents"):
        if col not in rules.columns:
            raise ParameterError(f"flag_variants: rules need an {col!r} column (itemsets), as "
                                 f"association_rules returns; got columns {list(rules.columns)}.")
    info: dict[Hashable, _ItemInfo] = {}

    def get(item: Hashable) -> _ItemInfo:
        if item not in info:
            info[item] = _ItemInfo(item, codes, descriptions)
        return info[item]

    why = [_rule_family(a, c, get) for a, c in zip(rules["antecedents"], rules["consequents"])]
    out = rules.copy()
    out["same_product_family"] = pd.Series([bool(w) for w in why], index=out.index, dtype=bool)
    out["variant_of"] = pd.Series(why, index=out.index, dtype=object)
    out.attrs.update(rules.attrs)
    return out


def _rule_family(ante: Iterable, cons: Iterable, get) -> str:
    """The first variant relation between a consequent item and an antecedent item (sorted, so stable)."""
    for c in sorted(cons, key=str):
        for a in sorted(ante, key=str):
            if a != c:
                why = _shared_family(get(a), get(c))
                if why:
                    return why
    return ""


def item_codes(products: pd.DataFrame) -> dict[str, str]:
    """Item label → stock code for baskets labelled by product name (as ``baskets_from_orders`` does).

    Parameters
    ----------
    products : DataFrame
        Canonical products table (``product_id``, ``product_name``).

    Returns
    -------
    dict
        Every label a product can carry in the baskets: its name when no other product has that
        name, ``"name [product_id]"`` (a shared name made unique), and the product id itself (a
        product without a name, or baskets labelled by id).
    """
    if "product_id" not in products.columns:
        raise SchemaError(f"item_codes needs a products table with product_id; got columns "
                          f"{list(products.columns)}.")
    ids = products["product_id"].dropna().astype(str).drop_duplicates()
    out = {i: i for i in ids}
    if "product_name" not in products.columns:
        return out
    prod = products.dropna(subset=["product_id"]).drop_duplicates("product_id")
    name = prod["product_name"].astype("string").str.strip()
    pid = prod["product_id"].astype(str)
    ok = name.notna() & (name != "")
    unique = ok & ~name.duplicated(keep=False)
    out.update(zip(name[unique].astype(str), pid[unique]))
    out.update(zip((name[ok] + " [" + pid[ok] + "]").astype(str), pid[ok]))
    return out
