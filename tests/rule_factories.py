"""Small builders for rule tests: sheet rows, .xlsx workbooks in memory, and files of a given kind."""
import io

from openpyxl import Workbook

from services.rules import COLUMNS

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n" + b"0" * 64
HANDLERS = ("meson", "asesor")


def rule_row(**values) -> dict:
    """One rule's raw values with sensible defaults (a text rule in step `inicio`)."""
    row = {"step": "inicio", "input_text": "hola", "respuesta": "¡Hola!", "tipo": "texto", "opciones": None,
           "siguiente_step": None, "prioridad": 1, "avanzar": "no", "rol_keyword": None, "handler": None,
           "calculo": None, "media_url": None}
    row.update(values)
    return row


def sheet_bytes(rows, headers=COLUMNS, blank_rows_after: tuple[int, ...] = ()) -> bytes:
    """An .xlsx with `headers` in the first row and one row per dict (or list of cells) in `rows`."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(headers))
    for index, row in enumerate(rows):
        sheet.append([row.get(h.lower().strip()) for h in headers] if isinstance(row, dict) else list(row))
        if index in blank_rows_after:
            sheet.append([])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def sheet_values(data: bytes) -> list[tuple]:
    """Every cell value of the first sheet of an .xlsx, row by row."""
    from openpyxl import load_workbook
    workbook = load_workbook(io.BytesIO(data))
    return [tuple(cell.value for cell in row) for row in workbook.worksheets[0].iter_rows()]


def demo_rows() -> list[dict]:
    """A small valid flow: inicio → menu (list) → ventas / soporte, with a default rule per step."""
    return [
        rule_row(step="inicio", input_text="*", respuesta="Bienvenido", siguiente_step="menu", avanzar="si"),
        rule_row(step="menu", input_text="*", respuesta="Elija una opción", tipo="lista",
                 opciones="Ventas|Soporte|Hablar con asesor"),
        rule_row(step="menu", input_text="1, ventas", respuesta="Ventas", siguiente_step="ventas", prioridad=1),
        rule_row(step="menu", input_text="2, soporte", respuesta="Soporte", siguiente_step="soporte", prioridad=2),
        rule_row(step="ventas", input_text="*", respuesta="¿Qué desea comprar?", tipo="botones",
                 opciones="Mesón|Lavaplatos", rol_keyword="ventas"),
        rule_row(step="ventas", input_text="mesón, meson", respuesta="Envíe las medidas", handler="meson",
                 calculo="precio_m2=350000; moneda=$", siguiente_step="ventas"),
        rule_row(step="soporte", input_text="*", respuesta="Un asesor le escribirá", handler="asesor",
                 siguiente_step="inicio"),
    ]
