"""A conclusion for reading: answers, one list of caveats each said once, the terms it uses;
formatted in Jupyter, wrapped at words in a terminal, plain text in a pipe."""

from __future__ import annotations

import subprocess
import sys

from labkit.common.conclusion import Conclusion

ANSWER = (
    "2 workers ran at 1.5× the speed of 1 (an estimate: 1 of its 4 trials ran while other work loaded this "
    "machine, too many to leave out; a quieter machine would settle it): no direction claimed: parallel "
    "efficiency 75% (interval not available), 90.6 MFLOP/s."
)
SPREAD = "Results may be unstable where the runs spread: more repeats, a quieter machine or a bigger problem would."


def test_each_caveat_is_said_once_and_the_terms_it_uses_are_explained() -> None:
    c = Conclusion([ANSWER, ""], [SPREAD, "", SPREAD])
    assert c.answers == (ANSWER,) and c.caveats == (SPREAD,)
    assert c.count("more repeats") == 1 and c == f"{ANSWER}\n{SPREAD}" and "\nCaveats:\n- Results may" in c.text()
    terms = dict(c.terms())
    assert {"parallel efficiency", "interval", "an estimate"} <= set(terms) and "steal" not in terms
    html = c._repr_html_()
    assert html.count("<li>") == 1 and "<b>Caveats</b>" in html and "<i>parallel efficiency</i>" in html
    assert "1.5× the speed" in html and "<script" not in Conclusion(["<script>x</script>"])._repr_html_()


def test_a_terminal_gets_lines_wrapped_at_words_and_a_pipe_gets_them_whole() -> None:
    c = Conclusion([ANSWER], [SPREAD])
    wrapped = c.text(60)
    assert all(len(line) <= 60 for line in wrapped.splitlines())
    # every word whole: the wrapped text is the same words as the unwrapped one
    assert wrapped.split() == c.text().split()
    assert "\n  " in wrapped  # a caveat's continuation lines are indented under its dash
    # print() in a pipe (a log, papermill's kernel) keeps each answer on one line
    code = "from labkit.common.conclusion import Conclusion as C; print(C([" + repr(ANSWER) + "]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == ANSWER
