"""The Tapescope desktop application."""
