"""End to end in a real browser: headless Chromium driven by Playwright."""
