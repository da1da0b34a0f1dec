"""The prediction settings form, built with magicgui from :class:`PredictSettings`.

Names, types, defaults, limits and tooltips all come from the settings dataclass (its
fields' metadata), so the form and the settings cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import typing

from magicgui.widgets import Container, create_widget

from ..core.predict.outputs import PredictSettings


def settings_widgets(settings_class) -> dict:
    """One magicgui widget per field of a settings dataclass, by field name.

    Each field's metadata holds its ``label``, ``tooltip``, widget options (limits,
    step, choices) and, for a number whose 0 means a default, the words shown for 0
    (``zero``).
    """
    hints = typing.get_type_hints(settings_class)
    widgets = {}
    for item in dataclasses.fields(settings_class):
        options = {k: v for k, v in item.metadata.items() if k not in ("label", "zero")}
        widget_type = "ComboBox" if "choices" in options else None
        label = item.metadata["label"]
        if "zero" in item.metadata:  # 0 means a default: say which
            label = f"{label}, 0: {item.metadata['zero']}"
        widgets[item.name] = create_widget(
            item.default, hints[item.name], name=item.name, label=label,
            widget_type=widget_type, options=options)
    return widgets


class PredictForm(Container):
    """The prediction settings; :meth:`settings` reads them back."""

    def __init__(self):
        self.fields = settings_widgets(PredictSettings)
        super().__init__(widgets=list(self.fields.values()))

    def settings(self) -> PredictSettings:
        """The settings the form shows."""
        return PredictSettings(**{name: w.value for name, w in self.fields.items()})
