"""The rules as an `.xlsx` sheet: import (all or nothing, every bad row reported) and export."""
import io
import logging
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter
from sqlalchemy import delete, select

from extensions import db
from models import Rule, RuleMedia
from services.rules import media as rule_media
from services.rules.editing import list_rules, step_names
from services.rules.media import FILE_REFERENCE_PREFIX, MediaError
from services.rules.validation import COLUMNS, as_text, known_handler_names, validate_rule
from services.transactions import in_transaction

log = logging.getLogger(__name__)
MB = 1024 * 1024
REQUIRED_COLUMNS = ("step", "input_text")
MAX_IMPORT_BYTES = 5 * MB
MAX_UNZIPPED_BYTES = 100 * MB
MAX_IMPORT_ROWS = 5000
MAX_REPORTED_ERRORS = 100
STRAY_COLUMNS_NAMED = 5
NOT_XLSX = ("El archivo no es un libro de Excel (.xlsx) válido. Ábralo en Excel y guárdelo como "
            "«Libro de Excel (.xlsx)».")


class SheetError(ValueError):
    """The uploaded file cannot be read as a rules sheet at all."""


@dataclass
class ImportReport:
    """What an import did: rules imported (and replaced), or its errors as (Excel row or None, reason).

    Errors are added in row order; the first MAX_REPORTED_ERRORS are kept and the rest only counted
    (`omitted`), so a sheet with a million bad cells still answers with a short page. `stopped_at` is
    the row where reading stopped because the list was full of rows with values outside the columns.
    """
    merge: bool = False
    imported: int = 0
    replaced: int = 0
    errors: list[tuple[int | None, str]] = field(default_factory=list)
    omitted: int = 0
    stopped_at: int | None = None

    def add(self, row: int | None, reason: str) -> None:
        """Record one error (kept if under the cap, else counted)."""
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append((row, reason))
        else:
            self.omitted += 1

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def error_count(self) -> int:
        return len(self.errors) + self.omitted

    @property
    def omitted_line(self) -> str:
        """"y N errores más" when errors were left out of the list, else ""."""
        if not self.omitted:
            return ""
        if self.stopped_at:
            return (f"y más errores desde la fila {self.stopped_at} (la revisión se detiene tras "
                    f"{MAX_REPORTED_ERRORS}): corrija estos y vuelva a importar")
        return "y 1 error más" if self.omitted == 1 else f"y {self.omitted} errores más"

    def error_lines(self) -> list[str]:
        lines = [f"fila {row}: {reason}" if row else reason for row, reason in self.errors]
        return lines + [self.omitted_line] if self.omitted else lines


def sheet_row(rule: Rule) -> tuple:
    """A rule as the cells of one sheet row, in COLUMNS order."""
    media_url = rule.media_url or (rule_media.reference_for(rule.media[0]) if rule.media else None)
    return (rule.step, rule.input_text, rule.respuesta or None, rule.tipo, rule.opciones, rule.siguiente_step,
            rule.prioridad, "si" if rule.avanzar else "no", rule.rol_keyword, rule.handler, rule.calculo, media_url)


def export_rules(target) -> int:
    """Write every rule to an .xlsx (a path or a binary file); returns how many rules were written."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "reglas"
    sheet.append(COLUMNS)
    rules = list_rules()
    for row_number, rule in enumerate(rules, start=2):
        for column, value in enumerate(sheet_row(rule), start=1):
            cell = sheet.cell(row=row_number, column=column)
            if isinstance(value, str):
                cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
                cell.data_type = "s"  # text starting with "=" stays text, not a formula
            else:
                cell.value = value
    sheet.freeze_panes = "A2"
    for column, width in enumerate((18, 24, 48, 10, 30, 18, 10, 9, 14, 12, 20, 40), start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    workbook.save(target)
    return len(rules)


def _read_bytes(source) -> bytes:
    if isinstance(source, (str, Path)):
        if Path(source).stat().st_size > MAX_IMPORT_BYTES:
            raise SheetError(f"El archivo supera el máximo de {MAX_IMPORT_BYTES // MB} MB.")
        with open(source, "rb") as handle:
            return handle.read()
    data = source.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise SheetError(f"El archivo supera el máximo de {MAX_IMPORT_BYTES // MB} MB.")
    return data


def _open_sheet(data: bytes):
    if not data:
        raise SheetError("El archivo está vacío.")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise SheetError(NOT_XLSX)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if "xl/workbook.xml" not in archive.namelist():
            raise SheetError(NOT_XLSX)
        if sum(info.file_size for info in archive.infolist()) > MAX_UNZIPPED_BYTES:
            raise SheetError("El libro es demasiado grande una vez descomprimido; divídalo en varios archivos.")
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many different errors on a damaged or foreign zip
        log.info("rules import: unreadable workbook", exc_info=True)
        raise SheetError(NOT_XLSX) from None
    if not workbook.worksheets:
        raise SheetError(NOT_XLSX)
    return workbook


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _header_map(header_row, report: ImportReport) -> dict[int, str]:
    names = [as_text(value).strip().lower() for value in header_row]
    columns, repeated = {}, []
    for index, name in enumerate(names):
        if name in columns.values():
            repeated.append(name)
        elif name:
            columns[index] = name
    unknown = [name for name in columns.values() if name not in COLUMNS]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns.values()]
    if missing:
        report.add(1, f"faltan encabezados obligatorios: {', '.join(missing)}")
    if unknown:
        report.add(1, f"encabezados desconocidos: {', '.join(unknown)} (se admiten: {', '.join(COLUMNS)})")
    if repeated:
        report.add(1, f"encabezados repetidos: {', '.join(dict.fromkeys(repeated))}")
    return columns


def _stray_columns(number: int, cells: tuple, columns: dict[int, str]) -> str | None:
    """The error of a row with values under columns without a header (one per row, naming a few), or None."""
    stray = [index for index in range(len(cells)) if index not in columns and not _is_blank(cells[index])]
    if not stray:
        return None
    if len(stray) == 1:
        return f"la columna {get_column_letter(stray[0] + 1)} tiene un valor pero no tiene encabezado"
    named = ", ".join(get_column_letter(index + 1) for index in stray[:STRAY_COLUMNS_NAMED])
    more = f" y {len(stray) - STRAY_COLUMNS_NAMED} más" if len(stray) > STRAY_COLUMNS_NAMED else ""
    return f"las columnas {named}{more} tienen valores pero no tienen encabezado"


def read_sheet(source, report: ImportReport) -> list[tuple[int, dict, str | None]]:
    """The non-blank data rows of the workbook's first sheet as (Excel row number, {column: value},
    the row's error about values under columns without a header, or None).

    Header problems go to `report`; SheetError when the file cannot be read at all. Reading stops
    (`report.stopped_at`) at the first row past MAX_REPORTED_ERRORS rows with such values: each of
    those cells costs the parser time, and the list could not show more errors anyway.
    """
    workbook = _open_sheet(_read_bytes(source))
    try:
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None or all(_is_blank(value) for value in header):
            raise SheetError(f"La primera fila debe tener los encabezados: {', '.join(COLUMNS)}.")
        columns = _header_map(header, report)
        if report.errors:
            return []
        found, stray_rows = [], 0
        for number, cells in enumerate(rows, start=2):
            if all(_is_blank(value) for value in cells):
                continue
            if len(found) == MAX_IMPORT_ROWS:
                raise SheetError(f"La hoja tiene más de {MAX_IMPORT_ROWS} reglas; divídala en varios archivos.")
            stray = _stray_columns(number, cells, columns)
            found.append((number, {columns[i]: value for i, value in enumerate(cells) if i in columns}, stray))
            stray_rows += stray is not None
            if stray_rows > MAX_REPORTED_ERRORS:
                report.stopped_at = number
                break
        return found
    finally:
        workbook.close()


def _prepare_row(number: int, raw: dict, steps: set[str], handlers, report: ImportReport):
    reference, media, media_error = as_text(raw.get("media_url")).strip(), None, None
    if reference.startswith(FILE_REFERENCE_PREFIX):
        raw = {**raw, "media_url": None}
        try:
            media = rule_media.resolve_reference(reference, as_text(raw.get("tipo")).strip().lower() or "texto")
        except MediaError as error:
            media_error = str(error)
    values, errors = validate_rule(raw, steps, handlers, has_media=media is not None or media_error is not None)
    if media_error:
        errors.setdefault("media_url", media_error)
    for name, reason in errors.items():
        report.add(number, f"{name}: {reason}")
    return values, media


def import_rules(source, merge: bool = False, known_handlers: Iterable[str] | None = None) -> ImportReport:
    """Load rules from an .xlsx (path or binary file), all or nothing.

    Replace mode (default) deletes the current rules and inserts the sheet's; merge mode adds them.
    On any error nothing changes and the report lists the bad rows with their reasons, in row
    order, up to MAX_REPORTED_ERRORS (the rest are counted).
    """
    report = ImportReport(merge=merge)
    try:
        rows = read_sheet(source, report)
    except SheetError as error:
        report.add(None, str(error))
        return report
    if not rows:
        if not report.errors:
            report.add(None, "La hoja no tiene reglas debajo de los encabezados.")
        return report
    handlers = frozenset(known_handlers) if known_handlers is not None else known_handler_names()
    steps = {as_text(raw.get("step")).strip() for _, raw, _ in rows} | (step_names() if merge else set())
    prepared = []
    for number, raw, stray in rows:
        if stray:
            report.add(number, stray)
        prepared.append(_prepare_row(number, raw, steps, handlers, report))
    if report.errors:
        return report

    old_paths = [] if merge else list(db.session.scalars(select(RuleMedia.path)))

    def work():
        if not merge:
            db.session.execute(delete(RuleMedia))
            report.replaced = db.session.execute(delete(Rule)).rowcount
        for values, media in prepared:
            rule = Rule(**values)
            if media is not None:
                rule.media.append(media)
            db.session.add(rule)
        db.session.flush()
    in_transaction(work)
    rule_media.remove_unreferenced(old_paths)
    report.imported = len(prepared)
    log.info("rules imported: %d (%s, %d replaced)", report.imported, "merge" if merge else "replace",
             report.replaced)
    return report
