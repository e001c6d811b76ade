"""What the browser tests share: Debian's chromium, its flags, and a walk over Bokeh's shadow roots."""
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

# Bokeh 3 renders inside nested shadow roots: walk them all
ROOTS_JS = """function roots(r = document, out = []) {
  out.push(r);
  for (const e of r.querySelectorAll('*')) if (e.shadowRoot) roots(e.shadowRoot, out);
  return out;
}"""
