"""The member card: the member number as a QR code and as a Code128 barcode, both as inline SVG."""

import io
import re

import segno
from barcode import Code128
from barcode.writer import SVGWriter

OPTIONS = {"module_width": 0.4, "module_height": 14.0, "font_size": 10, "text_distance": 4.0, "quiet_zone": 4.0}


def qr_svg(data: str, *, scale: int = 5) -> str:
    """An <svg> element (no XML declaration) that can go straight into a page."""
    return str(segno.make(data, micro=False, error="m").svg_inline(scale=scale, border=2, omitsize=False))


def code128_svg(data: str) -> str:
    """A Code128 barcode with the digits printed under it, as an <svg> element."""
    buffer = io.BytesIO()
    Code128(data, writer=SVGWriter()).write(buffer, options=OPTIONS)
    svg = re.sub(r"<!--.*?-->", "", buffer.getvalue().decode("utf-8"), flags=re.S)
    return svg[svg.index("<svg") :]  # only the <svg> element belongs inside HTML, not the XML declaration
