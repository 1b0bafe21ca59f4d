"""Where the code runs: a Jupyter kernel or a terminal, and inline figures in Jupyter."""

from __future__ import annotations


def in_jupyter() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, or papermill).

    >>> in_jupyter()
    False
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def show_figures_inline() -> None:
    """In Jupyter, display Figure objects as PNG, as ``%matplotlib inline`` does.

    labkit's figures are not pyplot's, so without this a Figure shows as its text repr, and
    an executed notebook's HTML report would hold no image.
    """
    if in_jupyter():
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats

        select_figure_formats(get_ipython(), {"png"}, dpi=100)
