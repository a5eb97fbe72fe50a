import dataclasses

from app.config_schema import load_schema
from engine.config import COMPILE_MODES, OptimizationConfig


def test_schema_matches_the_dataclass_fields_defaults_and_docstrings():
    schema = load_schema()
    fields = dataclasses.fields(OptimizationConfig)
    assert [f.name for f in schema.fields] == [f.name for f in fields]
    assert schema.defaults() == OptimizationConfig().to_dict()
    assert all(spec.doc for spec in schema.fields), "every toggle needs a tooltip"
    assert schema.field("compile_mode").choices == COMPILE_MODES
    assert schema.field("enable_fp16").kind == "bool"
    assert schema.field("num_threads").kind == "int"
    OptimizationConfig.from_dict(schema.defaults())
