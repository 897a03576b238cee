"""Path diagrams: the DOT text read back as nodes and paths, and the SVG Graphviz draws from it."""

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

import sm_multisem as sms
from sm_multisem.output.diagram import GraphvizMissing, PathDiagram, path_diagram

REFERENCE = Path(__file__).parent / "reference"
NODE = re.compile(r'^  "([^"]+)" \[(.*)\];$', re.MULTILINE)
EDGE = re.compile(r'^  "([^"]+)" -> "([^"]+)" \[(.*)\];$', re.MULTILINE)
ATTRIBUTE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
POSITIONS = ["y1_1", "y1_2", "y2_1", "y2_2"]


def nodes(diagram: PathDiagram) -> dict[str, dict[str, str]]:
    """Node name -> attributes, a label's lines joined by newlines."""
    return {name: _attributes(attrs) for name, attrs in NODE.findall(diagram.source)}


def paths(diagram: PathDiagram) -> dict[tuple[str, str], dict[str, str]]:
    """(from, to) -> attributes, in the direction the arrow is drawn (``dir=back`` reversed)."""
    out = {}
    for tail, head, attrs in EDGE.findall(diagram.source):
        attributes = _attributes(attrs)
        out[(head, tail) if attributes.get("dir") == "back" else (tail, head)] = attributes
    return out


def _attributes(text: str) -> dict[str, str]:
    return {key: value.replace("\\n", "\n") for key, value in ATTRIBUTE.findall(text)}


@pytest.fixture(scope="module")
def article_model():
    return sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", sms.simulate_article_data(n_clusters=30, seed=1))


@pytest.fixture(scope="module")
def relax_data():
    return pd.read_csv(REFERENCE / "relax_data.csv")


def test_article_model_boxes_circles_and_labels(article_model):
    diagram = article_model.path_diagram()
    drawn = nodes(diagram)
    covariates = ["x1_1", "x1_2", "x2_1", "x2_2"]
    errors = [f"e.{y}" for y in POSITIONS]
    assert set(drawn) == {*covariates, *POSITIONS, "K", "J1", "J2", *errors}
    assert {name for name, node in drawn.items() if node["shape"] == "box"} == {*covariates, *POSITIONS}
    assert {drawn[y]["label"] for y in POSITIONS} == {f"{y}\nc" for y in POSITIONS}  # the intercept, c
    assert drawn["K"]["label"] == "K\nS_k"
    assert drawn["J1"]["label"] == "J1\nS_j" and drawn["J2"]["label"] == "J2\nS_j"
    assert {drawn[e]["label"] for e in errors} == {"ε\nS_e"}
    assert {drawn[e]["shape"] for e in [*errors, "K", "J1", "J2"]} == {"circle"}


def test_article_model_paths(article_model):
    drawn = paths(article_model.path_diagram())
    expected = {(y.replace("y", "x"), y): "bx" for y in POSITIONS}
    expected |= {("K", y): "1" for y in POSITIONS}
    expected |= {("J1", "y1_1"): "1", ("J1", "y1_2"): "1", ("J2", "y2_1"): "1", ("J2", "y2_2"): "1"}
    expected |= {(f"e.{y}", y): None for y in POSITIONS}
    assert {key: attrs.get("label") for key, attrs in drawn.items()} == expected
    # the zero covariances of the effects are not drawn, as in the article
    assert not any(attrs.get("dir") == "both" for attrs in drawn.values())


def test_fitted_model_shows_estimates(article_model):
    res = article_model.fit()
    diagram = res.path_diagram()
    drawn, edges = nodes(diagram), paths(diagram)
    assert edges[("x1_1", "y1_1")]["label"] == f"{res.params['x']:.4g}"
    assert drawn["y2_2"]["label"] == f"y2_2\n{res.params['Intercept']:.4g}"
    assert drawn["K"]["label"] == f"K\n{res.params['var(k)']:.4g}"
    assert drawn["J2"]["label"] == f"J2\n{res.params['var(k:j)']:.4g}"
    assert drawn["e.y1_2"]["label"] == f"ε\n{res.params['var(Residual)']:.4g}"
    assert edges[("K", "y2_1")]["label"] == "1"  # fixed loadings keep their value
    assert not re.search(r"\b(bx|S_k|S_j|S_e)\b", diagram.source)


@pytest.mark.parametrize("relax", [
    lambda m: m.relax_variance("k:j", by="type"),
    lambda m: m.relax_residuals(by="role"),
    lambda m: m.relax_slope("x", by="type"),
    lambda m: m.relax_slope("x", by="type").relax_variance("k:j", by="type").relax_residuals(by="role"),
], ids=["variance", "residuals", "slope", "all three"])
def test_every_row_of_a_relaxed_table_is_drawn_with_its_label(relax, relax_data):
    model = relax(sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", relax_data))
    table = model.parameter_table
    diagram = model.path_diagram(max_positions=None)
    drawn, edges = nodes(diagram), paths(diagram)
    outcomes = set(table.loc[table["op"].isin(["~", "~1"]), "lhs"])
    for row in table.itertuples():
        if row.op == "~":
            assert edges[(row.rhs, row.lhs)]["label"] == row.label
        elif row.op == "=~":
            assert edges[(row.lhs, row.rhs)]["label"] == "1"
        elif row.op == "~1":
            assert drawn[row.lhs]["label"].split("\n")[1] == row.label
        elif row.lhs == row.rhs:
            owner = f"e.{row.lhs}" if row.lhs in outcomes else row.lhs
            assert drawn[owner]["label"].split("\n")[1] == row.label


def test_relaxed_variances_show_their_labels(relax_data):
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", relax_data).relax_variance("k:j", by="type")
    drawn = nodes(model.path_diagram(max_positions=None))
    assert drawn["J_pub1"]["label"] == "J_pub1\nS_j_pub" and drawn["J_prv2"]["label"] == "J_prv2\nS_j_prv"
    fitted = nodes(model.fit().path_diagram(max_positions=None))
    estimates = model.fit().params
    assert fitted["J_chr3"]["label"] == f"J_chr3\n{estimates['var(k:j)[chr]']:.4g}"


def test_many_positions_collapse_into_one_node():
    data = sms.simulate_nested((20, 8, 5), sd=(1.0, 1.0, 1.0), beta=(0.5, 2.0), seed=4)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data)
    diagram = model.path_diagram(max_positions=6)
    drawn, edges = nodes(diagram), paths(diagram)
    outcomes = [name for name in drawn if name.startswith("y")]
    assert outcomes == ["y1_1", "y1_2", "y1_3", "y1_4", "y1_5", "y2_1"]
    assert {name for name in drawn if name[0] in "KJ"} == {"K", "J1", "J2"}  # the effects of the positions drawn
    assert drawn["..."]["label"] == "... 34 more positions\n6 more effects"
    # the effects that also load on positions not drawn reach the node standing for them
    assert {tail for tail, head in edges if head == "..." and edges[(tail, head)].get("style") == "dashed"} == {
        "K", "J2"}
    everything = nodes(model.path_diagram(max_positions=None))
    assert sum(name.startswith("y") for name in everything) == 40 and "..." not in everything
    assert sum(name.startswith("J") for name in everything) == 8


def test_covariance_rows_are_curved_two_headed_edges(article_model):
    table = article_model.parameter_table
    extra = pd.DataFrame([("J1", "~~", "J2", "S_jj", True, float("nan")),
                          ("y1_1", "~~", "y1_2", "", False, 0.25)], columns=table.columns)
    edges = paths(path_diagram(pd.concat([table, extra], ignore_index=True)))
    assert edges[("J1", "J2")] == {"dir": "both", "constraint": "false", "label": "S_jj"}
    # a covariance of two outcomes is one of their residual errors
    assert edges[("e.y1_1", "e.y1_2")]["label"] == "0.25"
    assert sum(attrs.get("dir") == "both" for attrs in edges.values()) == 2  # not the covariances fixed at 0


def test_models_without_a_wide_form_are_refused_with_the_reason(article_data):
    regions = article_data.assign(region=article_data["k"] % 2)
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", regions).relax_variance("k", by="region")
    with pytest.raises(NotImplementedError, match="multi-group SEM"):
        model.path_diagram()


def test_ar1_residual_covariances_are_drawn_with_their_values():
    data = pd.read_csv(REFERENCE / "ar1_data.csv")
    model = sms.MultilevelSEM.from_formula("y ~ x + (1|k/j)", data).relax_residuals(structure="ar1", t="time")
    edges = paths(model.path_diagram(max_positions=3))
    assert edges[("e.y1_1", "e.y1_3")]["label"] == "S_e_lag2"
    res = model.fit()
    edges = paths(res.path_diagram(max_positions=3))
    expected = res.params["var(Residual)"] * res.params["rho(Residual)"] ** 2
    assert edges[("e.y1_1", "e.y1_3")]["label"] == f"{expected:.4g}"


def test_bad_max_positions(article_model):
    with pytest.raises(ValueError, match="max_positions must be at least 1"):
        article_model.path_diagram(max_positions=0)


def test_dot_files_need_no_graphviz(article_model, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot program
    diagram = article_model.path_diagram()
    assert str(diagram) == diagram.source
    assert diagram.render(tmp_path / "wide.dot").read_text() == diagram.source
    assert diagram.save(tmp_path / "wide.txt").read_text() == diagram.source
    assert diagram._repr_mimebundle_() == {"text/plain": diagram.source}
    with pytest.raises(GraphvizMissing, match="pip install graphviz.*apt-get install graphviz"):
        diagram.render(tmp_path / "wide.png")
    with pytest.raises(ValueError, match="has no extension"):
        diagram.render(tmp_path / "wide")


needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot program is not installed (apt-get install graphviz)")


@needs_dot
def test_svg_of_the_article_model(article_model, tmp_path):
    path = article_model.path_diagram().render(tmp_path / "article.svg")
    svg = ET.parse(path).getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    shapes = {}
    for group in svg.iterfind(".//svg:g[@class='node']", ns):
        shapes[group.find("svg:title", ns).text] = "box" if group.find("svg:polygon", ns) is not None else "circle"
    assert shapes == {**{name: "box" for name in ["x1_1", "x1_2", "x2_1", "x2_2", *POSITIONS]},
                      **{name: "circle" for name in ["K", "J1", "J2", *[f"e.{y}" for y in POSITIONS]]}}
    edges = {group.find("svg:title", ns).text for group in svg.iterfind(".//svg:g[@class='edge']", ns)}
    assert {"x1_1->y1_1", "y2_2->J2", "y1_2->K"} <= edges
    texts = [text.text for text in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert texts.count("bx") == 4 and texts.count("S_e") == 4 and texts.count("S_j") == 2
    assert texts.count("S_k") == 1 and texts.count("c") == 4
    bundle = article_model.path_diagram()._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
