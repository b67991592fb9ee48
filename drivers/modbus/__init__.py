"""Modbus TCP/RTU links. The only package that imports pymodbus."""
import logging
import os

# pymodbus logs a hex dump of every failed transaction at ERROR level; link health is reported by our
# own statistics and events instead. ESMS_LOG=DEBUG brings its output back for troubleshooting.
if os.environ.get("ESMS_LOG", "").upper() != "DEBUG":
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
