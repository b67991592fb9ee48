"""Cell chemistry tables: OCV(SOC, T), equivalent-circuit resistances, capacity vs temperature.

Built-in tables (lfp, nmc, lto, naion) live in data/<name>.toml; the same format loads a custom
chemistry with `load_chemistry(path)`. Pure data and interpolation: stdlib, numpy, app.core.errors.
"""
from app.core.chemistry.table import BUILTIN_CHEMISTRIES, Chemistry, get_chemistry, load_chemistry

__all__ = ["BUILTIN_CHEMISTRIES", "Chemistry", "get_chemistry", "load_chemistry"]
