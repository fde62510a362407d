"""Browser tests: JupyterLab in headless Chromium, driven by Playwright (see jlab.py)."""
