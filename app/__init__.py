"""Streamlit tabs of SAE Explorer; each module lays out one tab and calls sae_core."""
