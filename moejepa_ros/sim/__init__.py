"""Simulators behind one gymnasium interface: two_rooms, dmc (MuJoCo), isaac (optional)."""
