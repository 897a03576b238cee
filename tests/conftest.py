import numpy as np
import pandas as pd
import pytest

import sm_multisem as sms


def unbalance(data: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Drop about a quarter of the rows at random, leave some k with one j and some j with one i."""
    rng = np.random.default_rng(seed)
    keep = rng.uniform(size=len(data)) >= 0.25
    ks = data["k"].unique()
    for k in ks[:5]:  # only the first unit of these clusters
        keep &= ~((data["k"] == k) & (data["j"] > 1))
    for k in ks[5:10]:  # a single observation in the first unit of these clusters
        keep &= ~((data["k"] == k) & (data["j"] == 1) & (data["i"] > 1))
    return data[keep].reset_index(drop=True)


@pytest.fixture(scope="session")
def article_data() -> pd.DataFrame:
    return sms.simulate_article_data(n_clusters=100, seed=2011)


@pytest.fixture(scope="session")
def unbalanced_data() -> pd.DataFrame:
    data = sms.simulate_nested((80, 4, 3), sd=(1.0, 0.8, 1.0), beta=(0.5, 2.0), seed=7)
    return unbalance(data, seed=8)
