"""Reading the agreement out of its Yjs document: Tiptap's ProseMirror tree to HTML and text.

The browser editor keeps the document in the XmlFragment ``default``; the server renders it
from there, so what is approved, frozen and signed is what everyone saw in the editor.
"""

from __future__ import annotations

from html import escape
from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

FRAGMENT = "default"
MARKS = (("bold", "strong"), ("italic", "em"), ("underline", "u"), ("strike", "s"))


def attribute(node: XmlElement, name: str, default: Any) -> Any:
    value = node.attributes.get(name)
    return default if value is None else value


def fragment(doc: Doc[Any]) -> XmlFragment:
    root: XmlFragment = doc.get(FRAGMENT, type=XmlFragment)
    return root


def _inline_html(node: XmlText) -> str:
    out: list[str] = []
    for text, attrs in node.diff():
        piece = escape(str(text))
        for mark, tag in MARKS:
            if attrs and mark in attrs:
                piece = f"<{tag}>{piece}</{tag}>"
        out.append(piece)
    return "".join(out)


def _children_html(node: XmlFragment | XmlElement) -> str:
    return "".join(_node_html(child) for child in node.children)


def _level(node: XmlElement) -> int:
    try:
        return min(max(int(float(attribute(node, "level", 1))), 1), 6)
    except (TypeError, ValueError):
        return 1


def _node_html(node: Any) -> str:
    if isinstance(node, XmlText):
        return _inline_html(node)
    if not isinstance(node, XmlElement):
        return ""
    tag = node.tag
    inner = _children_html(node)
    if tag == "paragraph":
        return f"<p>{inner}</p>"
    if tag == "heading":
        level = _level(node)
        return f"<h{level}>{inner}</h{level}>"
    if tag == "orderedList":
        return f"<ol>{inner}</ol>"
    if tag == "bulletList":
        return f"<ul>{inner}</ul>"
    if tag == "listItem":
        return f"<li>{inner}</li>"
    if tag == "blockquote":
        return f"<blockquote>{inner}</blockquote>"
    if tag == "hardBreak":
        return "<br>"
    if tag == "horizontalRule":
        return "<hr>"
    # Unknown nodes keep their content, never their markup.
    return inner


def to_html(doc: Doc[Any]) -> str:
    return _children_html(fragment(doc))


def _inline_text(node: Any) -> str:
    if isinstance(node, XmlText):
        return "".join(str(text) for text, _attrs in node.diff())
    if isinstance(node, XmlElement):
        if node.tag == "hardBreak":
            return "\n"
        return "".join(_inline_text(child) for child in node.children)
    return ""


def _blocks(node: Any, prefix: str, out: list[str]) -> None:
    """Block nodes become lines; list items are numbered as the reader sees them (1., 1.1., ...)."""
    if not isinstance(node, XmlElement):
        return
    tag = node.tag
    if tag in ("paragraph", "heading"):
        out.append(prefix + _inline_text(node))
        return
    if tag in ("orderedList", "bulletList"):
        start = 1
        if tag == "orderedList":
            try:
                start = int(float(attribute(node, "start", 1)))
            except (TypeError, ValueError):
                start = 1
        for index, item in enumerate(node.children):
            marker = f"{start + index}. " if tag == "orderedList" else "- "
            _list_item(item, prefix, marker, out)
        return
    if tag == "horizontalRule":
        out.append(prefix + "---")
        return
    for child in node.children:
        _blocks(child, prefix, out)


def _list_item(item: Any, prefix: str, marker: str, out: list[str]) -> None:
    if not isinstance(item, XmlElement):
        return
    first = True
    for child in item.children:
        if first and isinstance(child, XmlElement) and child.tag in ("paragraph", "heading"):
            out.append(prefix + marker + _inline_text(child))
        else:
            _blocks(child, prefix + " " * len(marker), out)
        first = False


def to_text(doc: Doc[Any]) -> str:
    """The canonical plain text: one line per block, ending with a newline."""
    lines: list[str] = []
    for child in fragment(doc).children:
        _blocks(child, "", lines)
    return "\n".join(line.rstrip() for line in lines) + "\n"
