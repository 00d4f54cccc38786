"""A deterministic, realistic example table: telecom customers and whether they churned.

Drift knobs let the drift checks (and their tests) produce shifted data on purpose:
shifted numeric means, a changed plan mix, and a label shift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

PLANS = ("basic", "standard", "pro")
CONTRACTS = ("monthly", "annual", "two_year")
REGIONS = ("north", "south", "east", "west")
PAYMENTS = ("card", "bank_transfer", "invoice")


@dataclass(frozen=True)
class DriftKnobs:
    """How far generated data moves from the reference distribution."""

    mean_shift: dict[str, float] = field(default_factory=dict)  # column -> shift in standard deviations
    plan_mix: tuple[float, float, float] | None = None  # probabilities of basic/standard/pro
    label_shift: float = 0.0  # added to the churn log-odds


NUMERIC_SCALES = {"age": 12.0, "tenure_months": 18.0, "monthly_charges": 25.0, "support_calls": 1.5, "data_usage_gb": 9.0}


def customers(rows: int = 5000, *, seed: int = 7, drift: DriftKnobs | None = None) -> pd.DataFrame:
    """Customers with a binary `churned` target driven by tenure, contract, charges and support calls."""
    import numpy as np
    import pandas as pd

    knobs = drift or DriftKnobs()
    rng = np.random.default_rng(seed)

    def shifted(name: str, values: np.ndarray) -> np.ndarray:
        return values + knobs.mean_shift.get(name, 0.0) * NUMERIC_SCALES[name]

    plan = rng.choice(PLANS, size=rows, p=knobs.plan_mix or (0.45, 0.35, 0.20))
    contract = rng.choice(CONTRACTS, size=rows, p=(0.55, 0.30, 0.15))
    region = rng.choice(REGIONS, size=rows)
    payment = rng.choice(PAYMENTS, size=rows, p=(0.5, 0.3, 0.2))
    age = shifted("age", np.clip(rng.normal(44, 12, rows), 18, 90))
    tenure = shifted("tenure_months", np.clip(rng.gamma(2.0, 12.0, rows), 1, 120))
    plan_price = pd.Series(plan).map({"basic": 25.0, "standard": 55.0, "pro": 90.0}).to_numpy()
    monthly = shifted("monthly_charges", plan_price + rng.normal(0, 8, rows))
    calls = shifted("support_calls", rng.poisson(1.2, rows).astype(float))
    usage = shifted("data_usage_gb", np.clip(rng.normal(18, 9, rows), 0, None))

    contract_effect = pd.Series(contract).map({"monthly": 1.2, "annual": -0.6, "two_year": -1.6}).to_numpy()
    logit = (
        -1.0
        + contract_effect
        - 0.045 * (tenure - 24)
        + 0.025 * (monthly - 55)
        + 0.55 * (calls - 1.2)
        - 0.02 * (age - 44)
        + np.where(payment == "invoice", 0.5, 0.0)
        + knobs.label_shift
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({
        "customer_age": np.round(age).astype(int),
        "tenure_months": np.round(tenure).astype(int),
        "monthly_charges": np.round(monthly, 2),
        "support_calls": calls.astype(int) if not knobs.mean_shift.get("support_calls") else np.round(calls, 1),
        "data_usage_gb": np.round(usage, 2),
        "plan": plan,
        "contract": contract,
        "region": region,
        "payment_method": payment,
        "churned": churned,
    })


def house_prices(rows: int = 3000, *, seed: int = 11) -> pd.DataFrame:
    """A regression table: sale price (k€) from size, rooms, age, neighbourhood and energy label."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    hood = rng.choice(("centre", "suburb", "harbour", "rural"), size=rows, p=(0.2, 0.45, 0.15, 0.2))
    label = rng.choice(tuple("ABCDE"), size=rows)
    size = np.clip(rng.normal(110, 35, rows), 30, 400)
    rooms = np.clip(np.round(size / 28 + rng.normal(0, 0.8, rows)), 1, 12)
    age = np.clip(rng.gamma(2.5, 14, rows), 0, 150)
    hood_price = pd.Series(hood).map({"centre": 5.2, "suburb": 3.4, "harbour": 4.4, "rural": 2.1}).to_numpy()
    label_bonus = pd.Series(label).map({"A": 25, "B": 15, "C": 5, "D": -5, "E": -15}).to_numpy()
    price = hood_price * size + 8 * rooms - 0.6 * age + label_bonus + rng.normal(0, 25, rows)
    return pd.DataFrame({
        "floor_area_m2": np.round(size, 1),
        "rooms": rooms.astype(int),
        "building_age_years": np.round(age).astype(int),
        "neighbourhood": hood,
        "energy_label": label,
        "price_k": np.round(price, 1),
    })


EXAMPLES = {"customers": ("churned", customers), "house_prices": ("price_k", house_prices)}
