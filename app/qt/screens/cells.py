"""L3 cells: a live heatmap of one BESS in the physical layout of the site file.

Layers (V voltage, T temperature, D deviation from rack mean, S estimated SOC) switch the vector point and the fixed
scale; large BESS are paged by racks (PgUp/PgDn) so one page stays around 6,000 cells. Hover names
the cell, value and limits; a click opens the cell detail (L4).
"""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from app.core.sample import Sample
from app.core.site import Rack, Site
from app.qt.layers import Layer, layers_for
from widgets.cell_heatmap import CellHeatmap, Legend, RackLayout

CELLS_PER_PAGE = 6_000


def rack_pages(racks: tuple[Rack, ...], cells_per_page: int = CELLS_PER_PAGE) -> list[tuple[Rack, ...]]:
    pages: list[list[Rack]] = [[]]
    count = 0
    for r in racks:
        if pages[-1] and count + r.cell_count > cells_per_page:
            pages.append([])
            count = 0
        pages[-1].append(r)
        count += r.cell_count
    return [tuple(p) for p in pages]


class CellsScreen(QtWidgets.QWidget):
    cellHovered = QtCore.Signal(str)
    cellClicked = QtCore.Signal(str, int)          # rack path, cell number (1-based)

    def __init__(self, site: Site) -> None:
        super().__init__()
        self.site = site
        self._latest: dict[str, Sample] = {}
        lay = QtWidgets.QVBoxLayout(self)
        bar = QtWidgets.QHBoxLayout()
        lay.addLayout(bar)
        self.bess_box = QtWidgets.QComboBox()
        self.bess_box.addItems([f"BESS {b.id} ({b.chemistry.upper()}, {b.cell_count} cells)" for b in site.bess])
        self.layer_box = QtWidgets.QComboBox()
        self.page_box = QtWidgets.QComboBox()
        for label, widget in (("&BESS", self.bess_box), ("&Layer", self.layer_box), ("&Racks", self.page_box)):
            caption = QtWidgets.QLabel(label)
            caption.setBuddy(widget)
            bar.addWidget(caption)
            bar.addWidget(widget)
        bar.addStretch(1)
        self.title = QtWidgets.QLabel()
        self.title.setObjectName("boxTitle")
        lay.addWidget(self.title)
        self.holder = QtWidgets.QVBoxLayout()
        lay.addLayout(self.holder, 1)
        self.legend = Legend(layers_for(site, site.bess[0])[0].scale, "")
        lay.addWidget(self.legend)
        self.heatmap: CellHeatmap | None = None
        for key, step in (("V", 0), ("T", 1), ("D", 2), ("S", 3)):
            QtGui.QShortcut(QtGui.QKeySequence(key), self, activated=lambda i=step: self.layer_box.setCurrentIndex(i))
        QtGui.QShortcut(QtGui.QKeySequence("PgDown"), self, activated=lambda: self._step_page(1))
        QtGui.QShortcut(QtGui.QKeySequence("PgUp"), self, activated=lambda: self._step_page(-1))
        self.bess_box.currentIndexChanged.connect(self._bess_changed)
        self.layer_box.currentIndexChanged.connect(lambda _: self._rebuild())
        self.page_box.currentIndexChanged.connect(lambda _: self._rebuild())
        self._bess_changed(0)

    @property
    def bess(self):
        return self.site.bess[max(0, self.bess_box.currentIndex())]

    @property
    def layer(self) -> Layer:
        return self.layers[max(0, self.layer_box.currentIndex())]

    @property
    def racks(self) -> tuple[Rack, ...]:
        return self.pages[max(0, self.page_box.currentIndex())]

    def _bess_changed(self, _index: int) -> None:
        self.layers = layers_for(self.site, self.bess)
        self.pages = rack_pages(self.bess.racks)
        for box, items in ((self.layer_box, [layer.title for layer in self.layers]),
                           (self.page_box, [f"{p[0].path.rsplit('.', 1)[1]}–{p[-1].path.rsplit('.', 1)[1]}"
                                            for p in self.pages])):
            box.blockSignals(True)
            box.clear()
            box.addItems(items)
            box.blockSignals(False)
        self._rebuild()

    def _step_page(self, step: int) -> None:
        self.page_box.setCurrentIndex(min(max(0, self.page_box.currentIndex() + step), len(self.pages) - 1))

    def _rebuild(self) -> None:
        if self.heatmap is not None:
            self.holder.removeWidget(self.heatmap)
            self.heatmap.deleteLater()
        layer, racks = self.layer, self.racks
        self.heatmap = CellHeatmap([RackLayout(r.path.rsplit(".", 1)[1], r.modules, r.cells_per_module)
                                    for r in racks], layer.scale, layer.title.lower())
        self.heatmap.cellHovered.connect(self.cellHovered)
        self.heatmap.cellClicked.connect(self._clicked)
        self.holder.addWidget(self.heatmap)
        self.legend.set_scale(layer.scale, layer.title)
        self.title.setText(f"BESS {self.bess.id} — {layer.title.lower()}: racks side by side, modules as rows, "
                           f"cells as columns ({sum(r.cell_count for r in racks)} cells on this page)")
        self._paint(self._latest)

    def _clicked(self, rack_index: int, module: int, cell: int) -> None:
        rack = self.racks[rack_index - 1]
        self.cellClicked.emit(rack.path, (module - 1) * rack.cells_per_module + cell)

    def update_values(self, dirty: dict[str, Sample]) -> None:
        self._latest.update(dirty)
        self._paint(dirty)

    def _paint(self, samples: dict[str, Sample]) -> None:
        layer, touched = self.layer, False
        for i, r in enumerate(self.racks):
            s = samples.get(f"{r.path}.{layer.suffix}")
            if s is not None:
                self.heatmap.set_rack(i, layer.transform(s.value), "" if s.quality.usable else s.quality.value)
                touched = True
        if touched:
            self.heatmap.refresh()
