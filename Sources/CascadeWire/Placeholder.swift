// Replaced by the wire module.
