"""Which encoding a shapefile's attribute text is in, when no .cpg says so: Chinese files are often GBK.

Government systems in China very often deliver shapefiles whose .dbf text is GBK/GB18030 and no
.cpg beside it; GDAL then reads the bytes as ISO-8859-1, and 玄武区 arrives as `ÐþÎäÇø`, silently.
The file is read as ISO-8859-1 on purpose (each byte becomes one character, losslessly), and its
text is decoded here: strict UTF-8 first, then GB18030; text that fits neither is an error.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

# Tried in this order; a file of plain ASCII is UTF-8.
CANDIDATES = ("UTF-8", "GB18030")
# What the reader is told, so that every byte survives as one character.
RAW = "ISO-8859-1"


class TextEncodingError(ValueError):
    """Attribute text that is neither UTF-8 nor GB18030 (the caller is told to name the encoding)."""


def _text_columns(gdf: gpd.GeoDataFrame) -> list:
    """The attribute columns that may hold text (pandas 3 gives them the `str` dtype, older `object`)."""
    return [
        c
        for c in gdf.columns
        if c != gdf.geometry.name and (gdf[c].dtype == object or pd.api.types.is_string_dtype(gdf[c]))
    ]


def _texts(gdf: gpd.GeoDataFrame) -> list[str]:
    values = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    for column in _text_columns(gdf):
        values += [v for v in gdf[column] if isinstance(v, str)]
    return values


def _fits(texts: list[str], encoding: str) -> bool:
    try:
        for text in texts:
            text.encode(RAW).decode(encoding)
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return True


def decode_raw_text(
    gdf: gpd.GeoDataFrame, name: str, given: str | None = None
) -> tuple[gpd.GeoDataFrame, str]:
    """GDF read as ISO-8859-1, with its column names and text decoded (as GIVEN, else as they fit)."""
    texts = _texts(gdf)
    if given is not None:
        if not _fits(texts, given):
            raise TextEncodingError(f"{name}: the attribute text is not valid {given}.")
        encoding: str | None = given
    else:
        encoding = next((e for e in CANDIDATES if _fits(texts, e)), None)
    if encoding is None:
        raise TextEncodingError(
            f"{name}: the attribute text is neither UTF-8 nor GB18030 and the shapefile has no .cpg "
            "saying what it is. Give its encoding (`--encoding` on the command line, the `encoding` "
            "form field over HTTP), e.g. Big5 or GBK, or add a .cpg file to the archive."
        )

    def fix(value):
        return value.encode(RAW).decode(encoding) if isinstance(value, str) else value

    out = gdf.rename(columns={c: fix(c) for c in gdf.columns if c != gdf.geometry.name})
    for column in _text_columns(out):
        out[column] = out[column].map(fix)
    return out, encoding
