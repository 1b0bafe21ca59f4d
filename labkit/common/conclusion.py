"""A conclusion for reading: the answers, one compact list of caveats, the terms they use.

:class:`Conclusion` is a ``str`` (its plain lines, for code, logs and tests: one per
answer, then one per caveat), shown formatted in Jupyter (``_repr_html_``: a paragraph per
answer, a list of caveats, a line of the terms it uses) and, printed to a terminal, as
:meth:`Conclusion.text` wrapped at words (the answers, "Caveats:" and a dashed line each,
the terms). Each caveat is said once, however many sentences repeat it.

>>> c = Conclusion(["2 workers ran 1.6× faster than 1 (1.4–1.8×)."], ["Few runs.", "Few runs."])
>>> print(c.text())
2 workers ran 1.6× faster than 1 (1.4–1.8×).
<BLANKLINE>
Caveats:
- Few runs.
>>> str.__str__(c).splitlines(), c.caveats
(['2 workers ran 1.6× faster than 1 (1.4–1.8×).', 'Few runs.'], ('Few runs.',))
"""

from __future__ import annotations

import html
import shutil
import sys
import textwrap
from collections.abc import Iterable
from typing import Any

#: Words an answer may use, and what they mean; a conclusion lists those it uses.
TERMS = {
    "parallel efficiency": "the speedup divided by the ratio of worker counts; 100% is ideal",
    "outside load": "CPU time that processes other than the lab's (its client, scheduler, workers, "
    "Jupyter or labkit run) used on this machine while a trial ran",
    "steal": "CPU time the hypervisor gave to other virtual machines",
    "interval": "a 95% interval from the repeats (bootstrap or order statistics): where the true value "
    "lies, given these runs",
    "an estimate": "a figure without an interval: it claims no direction",
}


class Conclusion(str):
    """The answers and their caveats (see the module docstring)."""

    answers: tuple[str, ...]
    caveats: tuple[str, ...]

    def __new__(cls, answers: Iterable[str], caveats: Iterable[str] = ()) -> Conclusion:
        kept = tuple(a for a in answers if a)
        once = tuple(dict.fromkeys(c for c in caveats if c))
        self = super().__new__(cls, "\n".join([*kept, *once]))
        self.answers, self.caveats = kept, once
        return self

    @classmethod
    def of(cls, text: str) -> Conclusion:
        """``text`` as a conclusion: itself when it is one, else one answer per line."""
        return text if isinstance(text, Conclusion) else cls(str(text).split("\n"))

    def qualified(self, check: Any) -> Conclusion:
        """The same conclusion with each answer passed through ``check.qualify`` (a calibration
        that did not pass flags every answer; see :class:`labkit.analysis.calibration.Calibration`)."""
        return Conclusion([check.qualify(a) for a in self.answers], self.caveats)

    def terms(self) -> list[tuple[str, str]]:
        """The terms of :data:`TERMS` this conclusion uses, with their meaning."""
        return terms_in([*self.answers, *self.caveats])

    def text(self, width: int | None = None) -> str:
        """The conclusion as text, each line wrapped at words to ``width`` (None: not wrapped)."""
        return _text(self.answers, self.caveats, width, self.terms())

    def __str__(self) -> str:
        """Where standard output is a terminal, :meth:`text` wrapped at words to its width; else
        (a pipe, a log, a kernel's stream) the plain lines, one per answer and caveat."""
        if getattr(sys.stdout, "isatty", lambda: False)():
            return self.text(max(40, min(shutil.get_terminal_size((100, 24)).columns, 120)))
        return str.__str__(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        parts = [f"<p>{html.escape(a)}</p>" for a in self.answers]
        if self.caveats:
            items = "".join(f"<li>{html.escape(c)}</li>" for c in self.caveats)
            parts.append(f"<p><b>Caveats</b></p><ul>{items}</ul>")
        terms = self.terms()
        if terms:
            said = "; ".join(f"<i>{html.escape(t)}</i>: {html.escape(m)}" for t, m in terms)
            parts.append(f"<p style='font-size:90%;color:#555'>Terms: {said}.</p>")
        return f"<div class='labkit-answer'>{''.join(parts)}</div>"


def terms_in(texts: Iterable[str]) -> list[tuple[str, str]]:
    """The terms of :data:`TERMS` that ``texts`` use, with their meaning."""
    words = " ".join(texts).lower()
    return [(t, m) for t, m in TERMS.items() if t in words]


def _text(answers: tuple[str, ...], caveats: tuple[str, ...], width: int | None, terms: list | None = None) -> str:
    def fill(line: str, indent: str = "") -> str:
        if width is None:
            return line
        return textwrap.fill(line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)

    lines = [fill(a) for a in answers]
    if caveats:
        lines += ["", "Caveats:", *(fill(f"- {c}", "  ") for c in caveats)]
    if terms:
        lines += ["", fill("Terms: " + "; ".join(f"{t}: {m}" for t, m in terms) + ".", "  ")]
    return "\n".join(lines)
