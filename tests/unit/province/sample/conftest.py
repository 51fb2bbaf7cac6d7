"""Sample databases generated once per test session (a few thousand dossiers: fast, yet enough
for the shares and rare branches the tests look at)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dvcsync.province.sample import GenerateStats, generate

N_DOSSIERS = 3000
SEED = 42


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> GenerateStats:
    return generate(tmp_path_factory.mktemp("sample") / "onestop.db", N_DOSSIERS, SEED)


@pytest.fixture(scope="session")
def sample_path(sample: GenerateStats) -> Path:
    return sample.path
