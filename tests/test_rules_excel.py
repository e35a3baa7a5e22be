import io
import zipfile

import pytest
from sqlalchemy import select

from extensions import db
from models import Rule
from services.rules import COLUMNS, Upload, create_rule, export_rules, import_rules
from services.rules import sheet as rule_sheet
from tests.rule_factories import HANDLERS, PNG, demo_rows, rule_row, sheet_bytes, sheet_values


def load(data: bytes, merge=False):
    return import_rules(io.BytesIO(data), merge=merge, known_handlers=HANDLERS)


def stored_rules() -> list[tuple]:
    rules = db.session.scalars(select(Rule).order_by(Rule.step, Rule.prioridad, Rule.id))
    return [(r.step, r.input_text, r.tipo, r.siguiente_step, r.prioridad, r.avanzar) for r in rules]


def export_bytes() -> bytes:
    buffer = io.BytesIO()
    export_rules(buffer)
    return buffer.getvalue()


def test_a_good_workbook_is_imported_with_headers_in_any_order_and_case(app):
    headers = ["Respuesta", " STEP ", "tipo", "Input_Text", "siguiente_step", "prioridad", "AVANZAR", "opciones",
               "rol_keyword", "handler", "calculo", "media_url"]
    with app.app_context():
        report = load(sheet_bytes(demo_rows(), headers, blank_rows_after=(1, 2)))
        assert report.ok, report.errors
        assert (report.imported, report.replaced, report.merge) == (7, 0, False)
        rules = {(r.step, r.input_text): r for r in db.session.scalars(select(Rule))}
        assert len(rules) == 7
        menu = rules["menu", "*"]
        assert (menu.tipo, menu.opciones, menu.respuesta) == ("lista", "Ventas|Soporte|Hablar con asesor",
                                                              "Elija una opción")
        assert rules["inicio", "*"].avanzar is True and rules["menu", "2, soporte"].prioridad == 2
        meson = rules["ventas", "mesón, meson"]
        assert (meson.handler, meson.calculo, meson.rol_keyword, meson.media_url) == \
            ("meson", "precio_m2=350000; moneda=$", None, None)


def test_only_the_required_headers_are_needed(app):
    with app.app_context():
        report = load(sheet_bytes([["inicio", "*"], ["inicio", 1]], headers=["step", "input_text"]))
        assert report.ok, report.errors
        assert stored_rules() == [("inicio", "*", "texto", None, 1, False), ("inicio", "1", "texto", None, 1, False)]


def test_excel_typed_cells_are_read_as_the_user_meant(app):
    rows = [rule_row(input_text=1, prioridad=2.0, avanzar=True), rule_row(input_text=2.5, prioridad="3", avanzar=1),
            rule_row(input_text="tres", avanzar="SÍ"), rule_row(input_text="cuatro", avanzar=False, prioridad=None)]
    with app.app_context():
        assert load(sheet_bytes(rows)).ok
        assert [r[1:] for r in stored_rules()] == [("tres", "texto", None, 1, True),
                                                   ("cuatro", "texto", None, 1, False),
                                                   ("1", "texto", None, 2, True), ("2.5", "texto", None, 3, True)]


def test_a_missing_header_is_an_error_and_nothing_changes(app):
    with app.app_context():
        assert load(sheet_bytes(demo_rows())).ok
        before = stored_rules()
        report = load(sheet_bytes([["hola", "¡Hola!"]], headers=["input_text", "respuesta"]))
        assert report.errors == [(1, "faltan encabezados obligatorios: step")]
        assert stored_rules() == before


def test_unknown_and_repeated_headers_are_listed(app):
    with app.app_context():
        report = load(sheet_bytes([["inicio", "hola", "x", "y", "z"]],
                                  headers=["step", "input_text", "Notas", "color", "STEP"]))
        assert not report.ok and report.imported == 0
        assert report.errors[0][0] == 1 and "notas, color" in report.errors[0][1]
        assert report.errors[1] == (1, "encabezados repetidos: step")
        assert stored_rules() == []


def test_a_broken_workbook_reports_every_bad_row_and_imports_nothing(app):
    rows = [
        rule_row(step="inicio", input_text="*", siguiente_step="menu"),   # row 2: fine
        rule_row(step="menu", input_text="hola", tipo="foto"),             # row 3: unknown tipo
        rule_row(step="menu", input_text="1", siguiente_step="pagos"),     # row 4: dangling siguiente_step
        rule_row(step="menu", input_text="2", tipo="imagen", media_url="ftp://x/y.jpg"),  # row 5: bad URL
        rule_row(step="menu", input_text="3", prioridad="primera"),        # row 6: bad prioridad
        rule_row(step="menu", input_text="4", tipo="botones", opciones="A|B|C|D"),  # row 7: too many buttons
        rule_row(step="menu", input_text="5", prioridad=0, avanzar="quizás"),  # row 8: two problems
    ]
    with app.app_context():
        create_rule(rule_row(step="existente"), known_handlers=HANDLERS)
        report = load(sheet_bytes(rows))
        assert not report.ok and report.imported == 0
        by_row = {}
        for row, reason in report.errors:
            by_row.setdefault(row, []).append(reason.split(":")[0])
        assert by_row == {3: ["tipo"], 4: ["siguiente_step"], 5: ["media_url"], 6: ["prioridad"], 7: ["opciones"],
                          8: ["prioridad", "avanzar"]}
        assert "'pagos'" in dict(report.errors)[4] and "'foto'" in dict(report.errors)[3]
        assert report.error_lines()[0].startswith("fila 3: tipo: ")
        assert stored_rules() == [("existente", "hola", "texto", None, 1, False)]


def test_rows_keep_their_excel_numbers_across_blank_rows(app):
    rows = [rule_row(input_text="a"), rule_row(input_text="b", tipo="nada"), rule_row(input_text="c", tipo="x")]
    with app.app_context():
        report = load(sheet_bytes(rows, blank_rows_after=(0, 1)))
        assert [row for row, _ in report.errors] == [4, 6]


def test_a_value_under_a_column_without_header_is_an_error(app):
    with app.app_context():
        report = load(sheet_bytes([["inicio", "hola", None, "¿y esto?"]], headers=["step", "input_text"]))
        assert report.errors == [(2, "la columna D tiene un valor pero no tiene encabezado")]


def test_replace_mode_swaps_the_whole_rule_set(app):
    with app.app_context():
        create_rule(rule_row(step="viejo", input_text="a"), known_handlers=HANDLERS)
        create_rule(rule_row(step="viejo", input_text="b"), known_handlers=HANDLERS)
        report = load(sheet_bytes([rule_row(step="nuevo")]))
        assert (report.imported, report.replaced) == (1, 2)
        assert stored_rules() == [("nuevo", "hola", "texto", None, 1, False)]


def test_merge_mode_adds_and_checks_siguiente_step_against_existing_and_new_rules(app):
    with app.app_context():
        create_rule(rule_row(step="inicio"), known_handlers=HANDLERS)
        report = load(sheet_bytes([rule_row(step="menu", siguiente_step="inicio"),
                                   rule_row(step="menu", input_text="x", siguiente_step="ventas"),
                                   rule_row(step="ventas", siguiente_step="menu")]), merge=True)
        assert report.ok and (report.imported, report.replaced, report.merge) == (3, 0, True)
        assert [r[0] for r in stored_rules()] == ["inicio", "menu", "menu", "ventas"]
        dangling = load(sheet_bytes([rule_row(step="otro", siguiente_step="inexistente")]), merge=True)
        assert [row for row, _ in dangling.errors] == [2]
        replace = load(sheet_bytes([rule_row(step="menu", siguiente_step="inicio")]))
        assert [row for row, _ in replace.errors] == [2] and len(stored_rules()) == 4


def test_export_import_export_gives_the_same_sheet(app, media_root):
    tricky = [
        *demo_rows(),
        rule_row(step="extra", input_text="Ñandú, ÁRBOL", respuesta="", tipo="video",
                 media_url="https://cdn.example.com/v.mp4?a=1&b=2", prioridad=7, avanzar="si"),
    ]
    with app.app_context():
        assert load(sheet_bytes(tricky)).ok
        create_rule(rule_row(step="extra", input_text="1", respuesta="=1+1 no es fórmula\nlínea 2  ",
                             calculo="@x; -y"), known_handlers=HANDLERS)
        create_rule(rule_row(step="extra", input_text="foto", tipo="imagen"), Upload("foto.png", io.BytesIO(PNG)),
                    known_handlers=HANDLERS)
        first = export_bytes()
        values = sheet_values(first)
        assert values[0] == COLUMNS and len(values) == 11
        assert ("extra", "1", "=1+1 no es fórmula\nlínea 2  ") == values[1][:3]
        (photo,) = [row for row in values if row[1] == "foto"]
        assert photo[11].startswith("archivo:rules/") and (media_root / photo[11][len("archivo:"):]).is_file()
        assert all(row[7] in ("si", "no") for row in values[1:])
        report = load(first)
        assert report.ok, report.errors
        assert (report.imported, report.replaced) == (10, 10)
        assert sheet_values(export_bytes()) == values
        assert (media_root / photo[11][len("archivo:"):]).is_file()


def test_export_writes_rows_ordered_by_step_then_prioridad_then_id(app, tmp_path):
    with app.app_context():
        for step, prioridad in (("b", 2), ("a", 1), ("b", 1), ("a", 1)):
            create_rule(rule_row(step=step, input_text=f"{step}{prioridad}", prioridad=prioridad),
                        known_handlers=HANDLERS)
        assert export_rules(tmp_path / "reglas.xlsx") == 4
    rows = sheet_values((tmp_path / "reglas.xlsx").read_bytes())
    assert [(r[0], r[6]) for r in rows[1:]] == [("a", 1), ("a", 1), ("b", 1), ("b", 2)]


def test_a_file_reference_must_point_to_an_existing_file_of_the_right_kind(app, media_root):
    (media_root / "rules").mkdir()
    (media_root / "rules" / "abc_foto.png").write_bytes(PNG)
    rows = [rule_row(input_text="a", tipo="imagen", media_url="archivo:rules/abc_foto.png"),
            rule_row(input_text="b", tipo="imagen", media_url="archivo:rules/no_existe.png"),
            rule_row(input_text="c", tipo="imagen", media_url="archivo:../../etc/passwd"),
            rule_row(input_text="d", tipo="audio", media_url="archivo:rules/abc_foto.png")]
    with app.app_context():
        report = load(sheet_bytes(rows))
        assert [row for row, _ in report.errors] == [3, 4, 5]
        assert all(reason.startswith("media_url: ") for _, reason in report.errors)
        assert load(sheet_bytes(rows[:1])).ok
        (rule,) = db.session.scalars(select(Rule))
        assert (rule.media_url, rule.media[0].path, rule.media[0].mime) == (None, "rules/abc_foto.png", "image/png")


def _zip_without_workbook() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hola.txt", "no soy un libro")
    return buffer.getvalue()


def _broken_xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<esto no es xml")
    return buffer.getvalue()


@pytest.mark.parametrize("data", [b"step,input_text\ninicio,hola\n", _zip_without_workbook(), _broken_xlsx(),
                                  b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512])
def test_a_file_that_is_not_xlsx_is_one_clear_error(app, data):
    with app.app_context():
        assert load(sheet_bytes(demo_rows())).ok
        before = stored_rules()
        report = load(data)
        assert report.errors == [(None, rule_sheet.NOT_XLSX)] and report.imported == 0
        assert stored_rules() == before


@pytest.mark.parametrize("data, message", [(b"", "vacío"), (sheet_bytes([], headers=["step", "input_text"]),
                                                              "no tiene reglas"),
                                           (sheet_bytes([], headers=[]), "encabezados")])
def test_empty_files_and_sheets_are_refused(app, data, message):
    with app.app_context():
        (error,) = load(data).errors
        assert error[0] is None and message in error[1]


def test_size_and_row_limits(app, monkeypatch, tmp_path):
    big = tmp_path / "grande.xlsx"
    big.write_bytes(b"PK" + b"0" * (5 * 1024 * 1024))
    with app.app_context():
        assert "5 MB" in import_rules(big, known_handlers=HANDLERS).errors[0][1]
        assert "5 MB" in load(big.read_bytes()).errors[0][1]
        monkeypatch.setattr(rule_sheet, "MAX_IMPORT_ROWS", 3)
        assert load(sheet_bytes([rule_row(input_text=f"x{i}") for i in range(3)])).ok
        (error,) = load(sheet_bytes([rule_row(input_text=f"x{i}") for i in range(4)])).errors
        assert "más de 3" in error[1]


def test_cli_imports_and_exports(app, runner, tmp_path):
    good, bad, out = tmp_path / "buenas.xlsx", tmp_path / "malas.xlsx", tmp_path / "salida.xlsx"
    good.write_bytes(sheet_bytes(demo_rows()))
    bad.write_bytes(sheet_bytes([rule_row(tipo="foto"), rule_row(prioridad="x", siguiente_step="nada")]))
    result = runner.invoke(args=["import-rules", str(good)])
    assert result.exit_code == 0 and "7 reglas importadas" in result.output
    result = runner.invoke(args=["import-rules", str(good), "--merge"])
    assert result.exit_code == 0 and "7 reglas agregadas" in result.output
    result = runner.invoke(args=["import-rules", str(bad)])
    assert result.exit_code == 1
    assert "fila 2: tipo:" in result.output and "fila 3: siguiente_step:" in result.output
    assert "fila 3: prioridad:" in result.output and "No se importó nada: 3 errores" in result.output
    result = runner.invoke(args=["export-rules", str(out)])
    assert result.exit_code == 0 and "14 reglas exportadas" in result.output
    assert len(sheet_values(out.read_bytes())) == 15
    not_xlsx = tmp_path / "reglas.xlsx"
    not_xlsx.write_text("esto es texto")
    result = runner.invoke(args=["import-rules", str(not_xlsx)])
    assert result.exit_code == 1 and "no es un libro de Excel" in result.output
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Rule)) == 14
