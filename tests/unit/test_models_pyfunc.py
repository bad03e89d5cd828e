"""FeatureSpec: what the served model applies to its input must be what training applied."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from models.pyfunc import FeatureSpec


def test_spec_survives_its_json_file_with_column_order() -> None:
    # categorical columns deliberately not in alphabetical order: the spec file is written with sorted keys
    df = pd.DataFrame(
        {
            "amount": [10.0, 20.0, None],
            "zone": ["b", "a", None],
            "channel": ["sms", "email", "sms"],
            "band": ["x", None, "y"],
        }
    )
    spec = FeatureSpec.fit(df, numeric=["amount"], categorical=["zone", "channel", "band"])
    reloaded = FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict(), sort_keys=True)))
    assert reloaded.feature_columns == spec.feature_columns == ("amount", "zone", "channel", "band")
    np.testing.assert_array_equal(reloaded.transform(df), spec.transform(df))


def test_unseen_levels_are_missing() -> None:
    df = pd.DataFrame({"amount": [1.0, 2.0], "zone": ["a", "b"]})
    spec = FeatureSpec.fit(df, numeric=["amount"], categorical=["zone"])
    out = spec.transform(pd.DataFrame({"amount": [3.0], "zone": ["never_seen"]}))
    assert out[0, 0] == 3.0 and np.isnan(out[0, 1])
    assert spec.unseen_levels(pd.DataFrame({"zone": ["never_seen", "a"]})) == {"zone": ["never_seen"]}
