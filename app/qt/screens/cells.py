"""L3 cells: one live voltage heatmap per BESS in the physical layout of the site file."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from app.core.sample import Sample
from app.core.site import Site
from app.protection.limits import voltage_window
from widgets.cell_heatmap import CellHeatmap, Legend, RackLayout, Scale


class CellsScreen(QtWidgets.QWidget):
    cellHovered = QtCore.Signal(str)

    def __init__(self, site: Site) -> None:
        super().__init__()
        self.site = site
        lay = QtWidgets.QVBoxLayout(self)
        self.maps: dict[str, CellHeatmap] = {}
        for b in site.bess:
            scale = Scale("V", *voltage_window(b.chemistry, site.protection.overrides))
            title = QtWidgets.QLabel(f"BESS {b.id} — cell voltages ({b.chemistry.upper()}), "
                                     f"racks × modules (rows) × cells (columns)")
            title.setObjectName("boxTitle")
            lay.addWidget(title)
            heatmap = CellHeatmap([RackLayout(r.path.rsplit(".", 1)[1], r.modules, r.cells_per_module)
                                   for r in b.racks], scale, "cell voltage")
            heatmap.cellHovered.connect(self.cellHovered)
            lay.addWidget(heatmap, 1)
            lay.addWidget(Legend(scale, "Cell voltage"))
            self.maps[b.id] = heatmap

    def update_values(self, dirty: dict[str, Sample]) -> None:
        for b in self.site.bess:
            heatmap = self.maps[b.id]
            touched = False
            for i, r in enumerate(b.racks):
                s = dirty.get(f"{r.path}.cell_voltages_v")
                if s is not None:
                    heatmap.set_rack(i, s.value, "" if s.quality.usable else s.quality.value)
                    touched = True
            if touched:
                heatmap.refresh()
