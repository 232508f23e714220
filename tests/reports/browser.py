"""Headless Chromium and poppler for report tests: screenshots, broken images, console
errors, PDF pages and text layer.

Chromium (Debian ``chromium``) is driven from the command line, as the bulletin tests do:
``--screenshot`` for a picture and ``--dump-dom`` on a copy of the page with a probe script
injected at the top of ``<head>``. The probe records uncaught errors, failed resource
loads and console errors/warnings from the first byte on, and, on ``load``, how many
images there are and how many did not decode (Chromium leaves ``naturalWidth`` at 0); it
writes them on ``<body>`` as data attributes, which the DOM dump shows.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

__all__ = ["PageCheck", "check_page", "non_blank", "pdf_pages", "pdf_text", "screenshot", "tool"]

CHROMIUM = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars")
TIMEOUT_S = 120
_PROBE = """<script>(() => {
  const errors = [];
  addEventListener("error", (e) => {
    const t = e.target;
    errors.push(e.message || "failed to load " + (t && (t.currentSrc || t.src || t.href)));
  }, true);
  for (const level of ["error", "warn"]) {
    const original = console[level];
    console[level] = (...args) => { errors.push(level + ": " + args.join(" ")); original.apply(console, args); };
  }
  addEventListener("load", () => {
    const d = document.body.dataset, images = [...document.images];
    d.probeImages = images.length;
    d.probeBroken = images.filter((i) => !i.complete || i.naturalWidth === 0).length;
    d.probeErrors = JSON.stringify(errors);
  });
})();</script>"""


def tool(name: str) -> str:
    """Path of a Debian tool the report tests need; fails the test when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian: chromium / poppler-utils)")
    return path


def non_blank(path: Path) -> bool:
    """An image with some dark content and contrast (not a white or flat page)."""
    pixels = np.asarray(Image.open(path).convert("L"))
    return bool((pixels < 200).mean() > 0.005 and pixels.std() > 5)


def screenshot(page: Path, png: Path, *, width: int = 1100, height: int = 1600) -> list[str]:
    """Screenshot the top ``width`` × ``height`` pixels of an HTML file.

    Returns
    -------
    list of str
        Console messages Chromium logged while rendering (``…:CONSOLE…`` lines of its
        log), and any line saying a resource failed to load or a script threw.
    """
    run = subprocess.run(
        [
            tool("chromium"),
            *CHROMIUM,
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=True,
    )
    marks = (":CONSOLE", "Failed to load resource", "Uncaught")
    return [line for line in run.stderr.splitlines() if any(m in line for m in marks)]


@dataclass(frozen=True)
class PageCheck:
    """What the probe saw once the page had loaded."""

    images: int
    broken: int
    errors: tuple[str, ...]


def check_page(page: Path, workdir: Path) -> PageCheck:
    """Load a copy of ``page`` (resolving relative URLs as the original) with the probe.

    The copy is written to ``workdir``; a ``<base>`` element points relative URLs at the
    original's folder, so a missing file next to the page still counts as broken.
    """
    text = page.read_text(encoding="utf-8")
    head = re.search(r"<head[^>]*>", text)
    if head is None:
        pytest.fail(f"{page}: no <head>")
    base = f'<base href="{page.parent.as_uri()}/">'
    probed = workdir / f"{page.stem}.probe.html"
    probed.write_text(text[: head.end()] + base + _PROBE + text[head.end() :], encoding="utf-8")
    dom = subprocess.run(
        [tool("chromium"), *CHROMIUM, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=True,
    ).stdout
    found = {
        key: html.unescape(value)
        for key, value in re.findall(r'data-probe-(images|broken|errors)="([^"]*)"', dom)
    }
    if set(found) != {"images", "broken", "errors"}:
        pytest.fail(f"{page}: the probe did not report (page never finished loading?)")
    return PageCheck(int(found["images"]), int(found["broken"]), tuple(json.loads(found["errors"])))


def pdf_pages(pdf: Path, out: Path, *, dpi: int = 40) -> list[Path]:
    """Render every page of ``pdf`` to PNG in ``out`` (``pdftoppm``); the files in order."""
    subprocess.run(
        [tool("pdftoppm"), "-r", str(dpi), "-png", str(pdf), str(out / "page")],
        check=True,
        timeout=TIMEOUT_S,
    )
    return sorted(out.glob("page*.png"))


def pdf_text(pdf: Path) -> str:
    """The PDF's text layer (``pdftotext``)."""
    return subprocess.run(
        [tool("pdftotext"), str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT_S,
    ).stdout
