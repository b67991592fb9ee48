"""Energy Storage Management System."""
