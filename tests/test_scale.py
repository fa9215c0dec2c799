"""Scale fast paths agree with straightforward reference implementations (no timing here).

The reference functions below are the implementations of ``rfm_table``, ``customer_features``
and ``label_churn`` before they were vectorised (they group on id strings with pandas). The
package versions work on integer key codes (``schema.key_positions`` / ``key_codes`` and
``numpy.bincount``); these tests check that both give the same tables on the bundled sample
and on a generated frame with edge cases. Timing lives in ``benchmarks/bench_prep.py``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ecrm_research import survival as sv
from ecrm_research.data import io, quality, schema
from ecrm_research.data import keys as data_keys
from ecrm_research.exceptions import AnalysisError, ParameterError, SchemaError
from ecrm_research.prep import churn as prep_churn
from ecrm_research.prep import customers as prep_customers
from ecrm_research.prep import rules
from ecrm_research.prep.churn_data import ChurnData
from ecrm_research.prep.customers import RFM_COLUMNS, resolve_as_of
from ecrm_research.prep.rules import DAYS_PER_MONTH, accounting_row


# --------------------------------------------------------------------------- reference paths
def ref_order_values(orders: pd.DataFrame, order_items: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per completed or returned order before ``as_of`` with its net value."""
    for table, df in (("orders", orders), ("order_items", order_items)):
        schema.require_columns(df.columns, table, table, required=RFM_COLUMNS[table], hint="")
    o = orders.loc[orders["customer_id"].notna() & (orders["ordered_at"] < as_of),
                   ["order_id", "customer_id", "ordered_at", "status"]].copy()
    o["status"] = o["status"].astype("string").str.lower()
    o = o[o["status"].isin(["completed", "returned"])]
    items = order_items[["order_id", "quantity", "unit_price"]]
    items = items[items["order_id"].isin(o["order_id"])]
    value = items["quantity"].astype(float) * items["unit_price"].astype(float)
    lines = pd.DataFrame({"order_id": items["order_id"].values, "value": value.values,
                          "units": items["quantity"].astype(float).values})
    lines = lines.merge(o[["order_id", "status"]], on="order_id", how="left")
    # positive lines of a returned order went back: they count for nothing
    keep = (lines["status"] == "completed") | (lines["value"] < 0)
    lines = lines[keep]
    lines["returned_value"] = lines["value"].clip(upper=0)
    lines["units"] = lines["units"].clip(lower=0)
    per_order = lines.groupby("order_id", observed=True).agg(
        value=("value", "sum"), returned_value=("returned_value", "sum"),
        units=("units", "sum"), n_lines=("value", "size"))
    o = o.merge(per_order, left_on="order_id", right_index=True, how="left")
    o[["value", "returned_value", "units", "n_lines"]] = o[["value", "returned_value", "units", "n_lines"]].fillna(0.0)
    return o



def ref_rfm_table(orders: pd.DataFrame, order_items: pd.DataFrame,
              as_of: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """Reference (pre-vectorisation) implementation."""
    as_of = resolve_as_of(orders, as_of)
    ov = ref_order_values(orders, order_items, as_of)
    done = ov[ov["status"] == "completed"]
    if done.empty:
        raise AnalysisError(f"no completed orders before the as-of date {as_of.date()}: nothing to segment. "
                            "Choose a later as_of or check the order statuses.")
    g = done.groupby("customer_id", observed=True)
    rfm = pd.DataFrame({
        "first_order_at": g["ordered_at"].min(),
        "last_order_at": g["ordered_at"].max(),
        "frequency": g["order_id"].nunique().astype("int64"),
    })
    money = ov.groupby("customer_id", observed=True)[["value", "returned_value"]].sum()
    rfm = rfm.join(money, how="left").fillna({"value": 0.0, "returned_value": 0.0})
    rfm["recency_days"] = (as_of - rfm["last_order_at"].dt.normalize()).dt.days.astype("int64")
    rfm["tenure_days"] = (as_of - rfm["first_order_at"].dt.normalize()).dt.days.astype("int64")
    rfm = rfm.rename(columns={"value": "monetary"}).reset_index()
    rfm["customer_id"] = rfm["customer_id"].astype(str)
    rfm = rfm.sort_values("customer_id", kind="mergesort").reset_index(drop=True)
    out = rfm[["customer_id", "recency_days", "frequency", "monetary", "tenure_days",
               "first_order_at", "last_order_at", "returned_value"]]
    out.attrs["as_of"] = as_of
    return out



def ref_customer_features(tables: dict[str, pd.DataFrame], as_of: str | pd.Timestamp | None = None, *,
                      top_categories: int = 5) -> pd.DataFrame:
    """Reference (pre-vectorisation) implementation."""
    orders, items = tables["orders"], tables["order_items"]
    as_of = resolve_as_of(orders, as_of)
    rfm = ref_rfm_table(orders, items, as_of)
    feats = rfm[["customer_id", "recency_days", "frequency", "monetary", "tenure_days"]].copy()
    span_days = (rfm["last_order_at"] - rfm["first_order_at"]).dt.total_seconds() / 86400.0
    span_months = np.maximum(span_days, 1.0) / DAYS_PER_MONTH
    feats["orders_per_month"] = ((feats["frequency"] - 1) / span_months).where(feats["frequency"] >= 2)
    feats["mean_order_value"] = feats["monetary"] / feats["frequency"]

    ov = ref_order_values(orders, items, as_of)
    done = ov[ov["status"] == "completed"].copy()
    done["customer_id"] = done["customer_id"].astype(str)
    per = done.groupby("customer_id")
    feats["basket_size"] = feats["customer_id"].map(per["units"].mean())
    extra = orders.loc[orders["order_id"].isin(done["order_id"])].copy()
    extra["customer_id"] = extra["customer_id"].astype(str)
    if "discount_rate" in extra and extra["discount_rate"].notna().any():
        feats["discount_rate"] = feats["customer_id"].map(
            extra.groupby("customer_id")["discount_rate"].mean())
    else:
        feats["discount_rate"] = np.nan
    if "channel" in extra and extra["channel"].notna().any():
        app = extra["channel"].astype("string").str.lower().eq("app").astype(float)
        app[extra["channel"].isna().to_numpy()] = np.nan
        feats["app_share"] = feats["customer_id"].map(app.groupby(extra["customer_id"]).mean())
    else:
        feats["app_share"] = np.nan

    products = tables.get("products")
    if top_categories and products is not None and "category" in products and products["category"].notna().any():
        it = items.loc[items["order_id"].isin(done["order_id"]) & (items["quantity"] > 0),
                       ["order_id", "product_id", "quantity", "unit_price"]].copy()
        it["value"] = it["quantity"] * it["unit_price"]
        it = it.merge(products[["product_id", "category"]], on="product_id", how="left")
        it = it.merge(done[["order_id", "customer_id"]], on="order_id", how="left")
        it["category"] = it["category"].astype("string").fillna("unknown")
        top = it.groupby("category")["value"].sum().sort_values(ascending=False).head(top_categories).index
        spend = it.pivot_table(index="customer_id", columns="category", values="value", aggfunc="sum", fill_value=0.0)
        share = spend.div(spend.sum(axis=1).replace(0, np.nan), axis=0)
        for cat in top:
            col = "cat_" + re.sub(r"\W+", "_", str(cat).strip().lower()).strip("_")
            feats[col] = feats["customer_id"].map(share[cat]).fillna(0.0)
    feats.attrs["as_of"] = as_of
    return feats



def ref_label_churn(  # noqa: C901 - the pre-vectorisation reference, kept as it was
    tables: Mapping[str, pd.DataFrame],
    *,
    inactivity_days: int = 180,
    as_of: Any = None,
    covariate_window_days: int | None = None,
) -> ChurnData:
    """Reference (pre-vectorisation) implementation of the labelling; the argument checks are
    the library's own (``rules.churn_windows``), they are not what this reference tests."""
    W, N = rules.churn_windows(tables, inactivity_days, covariate_window_days)
    orders = tables["orders"]
    status = orders["status"].astype("string")
    ts = pd.to_datetime(orders["ordered_at"])
    as_of = ts.max() if as_of is None else pd.Timestamp(as_of)
    day = pd.Timedelta(days=1)
    acct: list[dict[str, Any]] = []

    done = orders.loc[(status == "completed").fillna(False) & ts.notna() & orders["customer_id"].notna()].copy()
    done["ordered_at"] = pd.to_datetime(done["ordered_at"])
    late_orders = done["ordered_at"] > as_of
    done = done.loc[~late_orders]
    all_ids = pd.Index(orders["customer_id"].dropna().unique())
    if "customers" in tables:
        all_ids = all_ids.union(pd.Index(tables["customers"]["customer_id"].dropna().unique()))
    acct.append(accounting_row("customers in the data", len(all_ids), "customers table ∪ customers with orders"))
    if done.empty:
        raise AnalysisError(f"No completed orders on or before as_of={as_of.date()}: nothing to label. "
                            f"Order statuses present: {status.value_counts().to_dict()}.")
    done = done.sort_values(["customer_id", "ordered_at", "order_id"], kind="mergesort")
    cid = done["customer_id"].astype(str).to_numpy()
    t = done["ordered_at"].to_numpy()
    first_mask = np.r_[True, cid[1:] != cid[:-1]]
    last_mask = np.r_[cid[1:] != cid[:-1], True]
    nxt = np.r_[t[1:], np.datetime64("NaT")]
    window = np.timedelta64(W, "D")
    with np.errstate(invalid="ignore"):
        gap_flag = (~last_mask) & ((nxt - t) > window)
    end_flag = last_mask & ((t + window) <= as_of.to_datetime64())
    flag = gap_flag | end_flag

    grp = pd.Series(cid)
    first_at = pd.Series(t[first_mask], index=cid[first_mask])
    last_at = pd.Series(t[last_mask], index=cid[last_mask])
    n_total = grp.groupby(cid).size()
    flagged = pd.DataFrame({"cid": cid, "t": t, "flag": flag, "pos": np.arange(len(cid))})[flag]
    first_flag = flagged.groupby("cid")["t"].first()
    first_flag_pos = flagged.groupby("cid")["pos"].first()
    # any completed order after the first churning gap?
    last_pos = pd.Series(np.flatnonzero(last_mask), index=cid[last_mask])
    returned = (first_flag_pos < last_pos.reindex(first_flag_pos.index)).reindex(first_at.index, fill_value=False)

    lab = pd.DataFrame({"customer_id": first_at.index, "first_order_at": first_at.to_numpy(),
                        "last_order_at": last_at.reindex(first_at.index).to_numpy()})
    churn_at = first_flag.reindex(first_at.index) + pd.Timedelta(days=W)
    lab["event"] = churn_at.notna().to_numpy().astype(int)
    lab["churned_at"] = churn_at.to_numpy()
    end = churn_at.fillna(as_of).to_numpy()
    lab["duration"] = (end - lab["first_order_at"].to_numpy()) / day
    lab["returned_after_churn"] = returned.to_numpy().astype(bool)
    lab["n_orders_total"] = n_total.reindex(first_at.index).to_numpy().astype(float)
    n_labelled = len(lab)
    acct.append(accounting_row("customers with a completed order on or before as_of", n_labelled,
                               f"{len(all_ids) - n_labelled:,} customers without one are never at risk"))

    # behaviour window [t0, t0 + N)
    first_map = lab.set_index("customer_id")["first_order_at"]
    in_window = lambda ids, when: (when.to_numpy() >= first_map.reindex(ids).to_numpy()) & (  # noqa: E731
        when.to_numpy() < (first_map.reindex(ids) + pd.Timedelta(days=N)).to_numpy())
    dcid = done["customer_id"].astype(str)
    win = done.loc[in_window(dcid, done["ordered_at"])]
    wcid = win["customer_id"].astype(str)
    cov = pd.DataFrame(index=pd.Index(lab["customer_id"], name="customer_id"))
    firsts = done.loc[first_mask]
    if {"promised_days", "delivery_days"} <= set(done.columns):
        def late(df):
            lt = (df["delivery_days"].astype(float) > df["promised_days"].astype(float)).astype(float)
            return lt.where(df["delivery_days"].notna() & df["promised_days"].notna())

        first_late = late(firsts)
        cov["first_order_late"] = pd.Series(first_late.to_numpy(), index=firsts["customer_id"].astype(str)
                                            ).astype("boolean")
        cov["late_share"] = late(win).groupby(wcid.to_numpy()).mean()
    allo = orders.loc[orders["customer_id"].notna() & ts.notna() & (ts <= as_of)]
    allo = allo.loc[allo["customer_id"].astype(str).isin(cov.index)]
    acid = allo["customer_id"].astype(str)
    allw = allo.loc[in_window(acid, pd.to_datetime(allo["ordered_at"]))]
    st = allw["status"].astype("string")
    rel = allw.loc[st.isin(["completed", "returned"]).fillna(False)]
    cov["return_share"] = (rel["status"].astype("string") == "returned").astype(float).groupby(
        rel["customer_id"].astype(str).to_numpy()).mean()
    cov["return_share"] = cov["return_share"].fillna(0.0)
    sc = tables.get("service_contacts")
    if sc is not None and len(sc):
        scid = sc["customer_id"].astype(str)
        keep = scid.isin(cov.index)
        sc, scid = sc.loc[keep], scid[keep]
        scw = sc.loc[in_window(scid, pd.to_datetime(sc["contacted_at"]))]
        cov["n_contacts"] = scw.groupby(scw["customer_id"].astype(str)).size().astype(float)
        cov["n_contacts"] = cov["n_contacts"].fillna(0.0)
    if "discount_rate" in done.columns and done["discount_rate"].notna().any():
        cov["mean_discount"] = win["discount_rate"].astype(float).groupby(wcid.to_numpy()).mean()
    cov["n_orders_window"] = win.groupby(wcid.to_numpy()).size().astype(float)
    spend_total = pd.Series(0.0, index=cov.index)
    if "order_items" in tables and len(tables["order_items"]):
        it = tables["order_items"]
        val = pd.Series(it["quantity"].to_numpy(float) * it["unit_price"].to_numpy(float),
                        index=it["order_id"].astype(str).to_numpy()).groupby(level=0).sum()
        ov = val.reindex(done["order_id"].astype(str).to_numpy()).fillna(0.0).to_numpy()
        spend_total = pd.Series(ov, index=dcid.to_numpy()).groupby(level=0).sum().reindex(cov.index).fillna(0.0)
        wv = val.reindex(win["order_id"].astype(str).to_numpy()).fillna(0.0).to_numpy()
        cov["spend_window"] = pd.Series(wv, index=wcid.to_numpy()).groupby(level=0).sum()
        cov["spend_window"] = cov["spend_window"].fillna(0.0)
    if "customers" in tables:
        cust = tables["customers"].copy()
        cust["customer_id"] = cust["customer_id"].astype(str)
        cust = cust.drop_duplicates("customer_id").set_index("customer_id")
        for col in ("is_member", "channel", "region", "age_band", "acquisition_source"):
            if col in cust.columns and cust[col].notna().any():
                s = cust[col].reindex(cov.index)
                if col == "is_member":
                    s = s.astype("boolean")
                elif isinstance(s.dtype, pd.CategoricalDtype):
                    s = s.cat.remove_unused_categories()
                else:
                    s = s.astype(object).where(s.notna(), np.nan)
                cov[col] = s
    if "channel" not in cov.columns and "channel" in done.columns and done["channel"].notna().any():
        cov["channel"] = pd.Series(firsts["channel"].astype(object).to_numpy(), index=firsts["customer_id"].astype(str))

    lab = lab.set_index("customer_id")
    lab["spend_to_date"] = spend_total.reindex(lab.index).to_numpy()
    observed_days = ((as_of - lab["first_order_at"]) / day).clip(lower=N)
    lab["annual_value"] = lab["spend_to_date"] * 365.25 / observed_days
    lab = lab.join(cov).reset_index()

    complete = lab["first_order_at"] <= as_of - pd.Timedelta(days=N)
    n_incomplete = int((~complete).sum())
    lab = lab.loc[complete].reset_index(drop=True)
    acct.append(accounting_row(
        f"excluded: first order within {N} days of as_of", n_incomplete,
        "behaviour window not yet complete; too new to judge"))
    acct.append(accounting_row("labelled customers", len(lab), "one row each in the analysis"))
    acct.append(accounting_row("churned (event = 1)", int(lab["event"].sum()),
                               f"no completed order for {W} days"))
    acct.append(accounting_row("right-censored (event = 0)", int((lab["event"] == 0).sum()),
                               f"still inside the {W}-day window at as_of={as_of.date()}"))
    acct.append(accounting_row("churned then returned (kept as churned)", int(lab["returned_after_churn"].sum()),
                               "ordered again after the churning gap: a win-back"))
    if lab.empty:
        raise AnalysisError(f"No customer has a complete {N}-day behaviour window before as_of={as_of.date()}; "
                            "use a shorter covariate_window_days or a later as_of.")
    if lab["event"].sum() == 0:
        warnings.warn(f"No customer churned under inactivity_days={W} (data span too short?): the survival "
                      "models need events. Use a shorter window.", sv.SurvivalWarning, stacklevel=3)
    covs = [c for c in ("first_order_late", "late_share", "return_share", "n_contacts", "mean_discount",
                        "n_orders_window", "spend_window", "is_member", "channel", "region", "age_band",
                        "acquisition_source") if c in lab.columns and lab[c].notna().any()]
    absent = [c for c in cov.columns if c not in covs]
    if absent:
        acct.append(accounting_row(f"covariates without any value: {', '.join(absent)}", 0,
                                   "not recorded in these data; left out of the models"))
    definition = (
        f"A customer churns after {W} days without a completed order. Time starts at the first completed "
        f"order; churn is dated at the last order before the first gap of more than {W} days plus {W} days. "
        f"Customers still inside their {W}-day window at the end of data ({as_of.date()}) are right-censored "
        f"there. Covariates are measured in the first {N} days after the first order (no look-ahead); "
        f"customers whose first order is within {N} days of the end are excluded.")
    return ChurnData(frame=lab, covariates=covs, unit="days", accounting=pd.DataFrame(acct),
                     definition=definition, as_of=as_of, inactivity_days=W, covariate_window_days=N)




# --------------------------------------------------------------------------- data
def edge_tables(seed: int = 3, *, arrow_ids: bool = True) -> dict[str, pd.DataFrame]:
    """Small canonical tables with the awkward cases the fast paths must get right.

    Non-ASCII and mixed-case ids (sort order), several orders of one customer at the same
    timestamp (ties broken by order id), order lines not stored order by order, lines of
    unknown orders and products, missing prices, completed orders without lines, customers with
    only returned / cancelled orders, orders without a customer, orders after the as-of date.
    """
    rng = np.random.default_rng(seed)
    cust = [f"c{i:03d}" for i in range(60)] + ["Zoë", "zoe", "Émile", "007", "7", "a b", "ß"]
    n_orders = 700
    oc = rng.choice(cust, n_orders)
    start = np.datetime64("2023-01-01T00:00:00")
    ts = start + rng.integers(0, 500, n_orders).astype("timedelta64[D]") + (
        rng.integers(0, 3, n_orders) * 3600).astype("timedelta64[s]")
    ts[:40] = ts[0]                       # ties: one timestamp for many orders ...
    oc[:40] = rng.choice(["c001", "Zoë", "c002"], 40)   # ... of the same customers
    status = rng.choice(["completed", "cancelled", "returned"], n_orders, p=[0.8, 0.1, 0.1])
    oid = np.array([f"o{i:05d}" for i in rng.permutation(n_orders)])
    orders = pd.DataFrame({
        "order_id": oid, "customer_id": oc, "ordered_at": ts.astype("datetime64[ns]"), "status": status,
        "promised_days": rng.integers(1, 5, n_orders).astype(float),
        "delivery_days": rng.integers(0, 7, n_orders).astype(float),
        "discount_rate": np.where(rng.random(n_orders) < 0.2, np.nan, rng.random(n_orders) * 0.3),
        "channel": rng.choice(["app", "web"], n_orders),
    })
    orders.loc[rng.random(n_orders) < 0.02, "customer_id"] = None
    orders.loc[rng.random(n_orders) < 0.05, "delivery_days"] = np.nan
    orders.loc[orders["customer_id"] == "ß", "status"] = "returned"          # only returned orders
    orders.loc[orders["customer_id"] == "a b", "status"] = "cancelled"       # only cancelled orders
    n_lines = 2200
    lo = rng.integers(0, n_orders - 30, n_lines)                             # last 30 orders: no lines
    products = pd.DataFrame({"product_id": [f"p{i}" for i in range(40)],
                             "category": rng.choice(["Home", "toys", "garden & co", None], 40)})
    items = pd.DataFrame({
        "order_id": oid[lo], "line_no": np.zeros(n_lines, dtype=np.int64),
        "product_id": rng.choice([f"p{i}" for i in range(43)], n_lines),     # p40..p42 unknown
        "quantity": rng.integers(-2, 6, n_lines).astype(float),
        "unit_price": np.round(rng.gamma(2, 5, n_lines), 2),
    })
    items.loc[rng.random(n_lines) < 0.01, "unit_price"] = np.nan
    items.loc[rng.random(n_lines) < 0.01, "order_id"] = "missing-order"
    items["line_no"] = items.groupby("order_id").cumcount()
    customers = pd.DataFrame({"customer_id": cust + ["never-bought"],
                              "is_member": rng.random(len(cust) + 1) < 0.4,
                              "region": rng.choice(["N", "S", None], len(cust) + 1)})
    contacts = pd.DataFrame({"contact_id": [f"k{i}" for i in range(300)], "customer_id": rng.choice(cust, 300),
                             "contacted_at": (start + rng.integers(0, 500, 300).astype("timedelta64[D]")
                                              ).astype("datetime64[ns]")})
    tables = {"customers": customers, "products": products, "orders": orders, "order_items": items,
              "service_contacts": contacts}
    if arrow_ids:
        for t in tables.values():
            for c in ("order_id", "customer_id", "product_id", "contact_id", "region", "category"):
                if c in t:
                    t[c] = t[c].astype(schema.ID)
        orders["status"] = pd.Categorical(orders["status"], categories=list(schema.ORDER_STATUSES))
    return tables


def fixed_width_ids(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The edge tables with every id padded to one byte width per id kind ('_' appended; the
    unknown order id and the customer without orders renamed to be no wider than the others),
    so the integer-id paths of schema run."""
    out = {k: v.copy() for k, v in tables.items()}
    out["order_items"]["order_id"] = out["order_items"]["order_id"].replace("missing-order", "o99999")
    out["customers"]["customer_id"] = out["customers"]["customer_id"].replace("never-bought", "nvr")
    for col in ("customer_id", "order_id", "product_id", "contact_id"):
        present = [t[col] for t in out.values() if col in t]
        width = max(len(str(x).encode()) for s in present for x in s.dropna())
        for t in out.values():
            if col in t:
                pad = t[col].astype(object).map(
                    lambda x, width=width: x if pd.isna(x) else x + "_" * (width - len(x.encode())))
                t[col] = pad.astype(t[col].dtype)
    for name, col in (("orders", "order_id"), ("order_items", "order_id"), ("customers", "customer_id")):
        assert data_keys.int_keys(out[name][col].array.__arrow_array__()) is not None
    return out


@pytest.fixture(scope="module")
def sample_tables():
    ds = io.load_dataset()
    return quality.clean(ds.tables).tables


def assert_same(fast: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Same rows, columns, dtypes and values (floats to 1e-9 relative: sums run in another order)."""
    pd.testing.assert_frame_equal(fast.reset_index(drop=True), ref.reset_index(drop=True),
                                  check_exact=False, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- RFM
def test_rfm_fast_path_matches_reference_on_sample(sample_tables):
    t = sample_tables
    assert_same(prep_customers.rfm_table(t["orders"], t["order_items"]), ref_rfm_table(t["orders"], t["order_items"]))


@pytest.mark.parametrize("arrow_ids", [True, False, "fixed width"])
@pytest.mark.parametrize("as_of", [None, "2023-09-01"])
def test_rfm_fast_path_matches_reference_on_edge_cases(arrow_ids, as_of):
    t = fixed_width_ids(edge_tables()) if arrow_ids == "fixed width" else edge_tables(arrow_ids=arrow_ids)
    fast = prep_customers.rfm_table(t["orders"], t["order_items"], as_of)
    assert_same(fast, ref_rfm_table(t["orders"], t["order_items"], as_of))
    assert fast["customer_id"].tolist() == sorted(fast["customer_id"])   # code-point order, like str
    ids = {x.rstrip("_") for x in fast["customer_id"]}
    assert "ß" not in ids and "a b" not in ids


def test_customer_features_fast_path_matches_reference(sample_tables):
    assert_same(prep_customers.customer_features(sample_tables), ref_customer_features(sample_tables))
    t = edge_tables()
    assert_same(prep_customers.customer_features(t), ref_customer_features(t))
    t = fixed_width_ids(t)
    assert_same(prep_customers.customer_features(t), ref_customer_features(t))


def test_rfm_rejects_duplicate_order_ids():
    t = edge_tables()
    orders = pd.concat([t["orders"], t["orders"].iloc[[5]]], ignore_index=True)
    orders.loc[len(orders) - 1, "status"] = "completed"
    with pytest.raises(SchemaError, match="order_id is not unique"):
        prep_customers.rfm_table(orders, t["order_items"])


# --------------------------------------------------------------------------- churn labelling
def _same_churn(fast: sv.ChurnData, ref: sv.ChurnData) -> None:
    assert_same(fast.frame, ref.frame)
    pd.testing.assert_frame_equal(fast.accounting, ref.accounting)
    assert fast.covariates == ref.covariates and fast.definition == ref.definition


@pytest.mark.parametrize("days", [90, 180])
def test_label_churn_fast_path_matches_reference_on_sample(sample_tables, days):
    _same_churn(prep_churn.label_churn(sample_tables, inactivity_days=days),
                ref_label_churn(sample_tables, inactivity_days=days))


@pytest.mark.parametrize("arrow_ids", [True, False, "fixed width"])
@pytest.mark.parametrize("as_of", [None, "2023-12-01"])
def test_label_churn_fast_path_matches_reference_on_edge_cases(arrow_ids, as_of):
    t = fixed_width_ids(edge_tables()) if arrow_ids == "fixed width" else edge_tables(arrow_ids=arrow_ids)
    _same_churn(prep_churn.label_churn(t, inactivity_days=60, covariate_window_days=30, as_of=as_of),
                ref_label_churn(t, inactivity_days=60, covariate_window_days=30, as_of=as_of))


def test_label_churn_ties_broken_by_order_id():
    """Two orders at the same instant: the first order is the one with the smaller id."""
    orders = pd.DataFrame({"order_id": ["o2", "o1", "o3"], "customer_id": ["a", "a", "a"],
                           "ordered_at": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-06-01"]),
                           "status": ["completed"] * 3, "promised_days": [2.0, 2.0, 2.0],
                           "delivery_days": [5.0, 1.0, 1.0], "channel": ["web", "app", "app"]})
    fast = prep_churn.label_churn({"orders": orders}, inactivity_days=100, covariate_window_days=30)
    ref = ref_label_churn({"orders": orders}, inactivity_days=100, covariate_window_days=30)
    _same_churn(fast, ref)
    assert fast.frame.loc[0, "channel"] == "app" and not fast.frame.loc[0, "first_order_late"]


# --------------------------------------------------------------------------- key helpers
def test_key_positions_and_isin_match_pandas():
    rng = np.random.default_rng(0)
    ids = pd.Series([f"k{i}" for i in rng.permutation(500)], dtype=schema.ID)
    vals = pd.Series(np.repeat(rng.choice([f"k{i}" for i in range(520)], 300), rng.integers(1, 4, 300)),
                     dtype=schema.ID)
    vals[::17] = pd.NA
    expected = pd.Index(ids.astype(object)).get_indexer(vals.astype(object))
    expected[vals.isna().to_numpy()] = -1
    np.testing.assert_array_equal(data_keys.key_positions(vals, ids), expected)
    np.testing.assert_array_equal(data_keys.key_positions(vals.astype(object), ids.astype(object)), expected)
    np.testing.assert_array_equal(data_keys.key_isin(vals, ids), expected >= 0)
    pos, unique = data_keys.key_positions(vals, pd.concat([ids, ids.iloc[:3]]), return_unique=True)
    assert not unique and (pos == expected).all()   # first occurrence wins


def _as_object_positions(vals: pd.Series, keys: pd.Series) -> np.ndarray:
    """Reference join on Python objects: first occurrence of each key wins, missing → -1."""
    first = {}
    for i, k in enumerate(keys.astype(object)):
        if k is not pd.NA and k not in first:
            first[k] = i
    return np.array([-1 if v is pd.NA else first.get(v, -1) for v in vals.astype(object)], dtype=np.int64)


@pytest.mark.parametrize("make_id", [
    lambda i: f"{i * 997:09d}",               # 9 varying bytes → the pyarrow path
    lambda i: f"C{i:09d}",                    # constant bytes dropped, ≤ 8 vary → the integer path
    lambda i: f"{i:06d}",
    lambda i: f"{'éü'[i % 2]}{i:06d}",             # two-byte UTF-8 letters: same byte width
])
def test_key_helpers_on_fixed_width_ids_match_a_python_reference(make_id):
    rng = np.random.default_rng(1)
    universe = [make_id(int(i)) for i in rng.choice(10**6, 800, replace=False)]
    keys = pd.Series(universe[:600], dtype=schema.ID)
    vals = pd.Series(np.repeat(rng.choice(universe, 400), rng.integers(1, 4, 400)), dtype=schema.ID)
    vals[::13] = pd.NA
    expected = _as_object_positions(vals, keys)
    np.testing.assert_array_equal(data_keys.key_positions(vals, keys), expected)
    np.testing.assert_array_equal(data_keys.key_isin(vals, keys), expected >= 0)
    starts, pos = data_keys.key_runs(vals, keys)
    assert starts[0] == 0 and (np.diff(starts) > 0).all() and len(starts) < len(vals)   # runs of one id
    np.testing.assert_array_equal(np.repeat(pos, np.diff(np.r_[starts, len(vals)])), expected)
    dup_keys = pd.concat([keys, keys.iloc[[5, 0, 7]]], ignore_index=True)
    pos, unique = data_keys.key_positions(vals, dup_keys, return_unique=True)
    assert not unique and (pos == expected).all()
    with_na = keys.copy()
    with_na[3] = pd.NA
    np.testing.assert_array_equal(data_keys.key_positions(vals, with_na), _as_object_positions(vals, with_na))
    # lines stored order by order, in the keys' own order (the no-look-up case)
    in_order = pd.Series(np.repeat(keys.to_numpy(object), rng.integers(1, 4, len(keys))), dtype=schema.ID)
    pos, unique = data_keys.key_positions(in_order, keys, return_unique=True)
    assert unique and (pos == _as_object_positions(in_order, keys)).all()
    keys2 = keys.copy()
    keys2[20] = keys[5]                       # a repeated key: its first occurrence must win
    in_order2 = pd.Series(np.repeat(keys2.to_numpy(object), 2), dtype=schema.ID)
    pos, unique = data_keys.key_positions(in_order2, keys2, return_unique=True)
    assert not unique and (pos == _as_object_positions(in_order2, keys2)).all() and pos[40] == 5
    for sort in (True, False):
        codes, uniques = data_keys.key_codes(vals, sort=sort)
        ref_codes, ref_uniques = pd.factorize(vals.astype(object), sort=sort, use_na_sentinel=True)
        np.testing.assert_array_equal(codes, ref_codes)
        assert list(uniques) == list(ref_uniques) and uniques.dtype == schema.ID


def test_int_keys_are_exact_and_ordered_like_the_text():
    ids = pd.Series(["C0012", "C0003", None, "C0120", "C0012", "D0012"], dtype=schema.ID)
    (ints, valid), = data_keys.int_keys(ids.array.__arrow_array__())
    assert valid.tolist() == [True, True, False, True, True, True]
    present = ids.dropna().tolist()
    order_by_int = [present[i] for i in np.argsort(ints[valid], kind="stable")]
    assert order_by_int == sorted(present)
    assert len(set(ints[valid].tolist())) == len(set(present))
    assert data_keys.int_keys(pd.Series(["a1", "b22"], dtype=schema.ID).array.__arrow_array__()) is None   # widths differ
    assert data_keys.int_keys(pd.Series(["123456789", "234567890"], dtype=schema.ID).array.__arrow_array__()) is None  # 9 bytes vary


# --------------------------------------------------------------------------- column projection
def test_load_dataset_reads_only_projected_columns(sample_dir, tmp_path):
    import shutil

    for p in sample_dir.glob("*.parquet"):
        shutil.copy(p, tmp_path / p.name)
    items = pd.read_parquet(tmp_path / "order_items.parquet")
    items["wide_note"] = "x" * 50                                 # an extra column not asked for
    items.to_parquet(tmp_path / "order_items.parquet", index=False)
    full = io.load_dataset(tmp_path)
    proj = io.load_dataset(tmp_path, columns={"orders": ["status"], "order_items": [], "customers": []})
    assert "wide_note" in full.tables["order_items"] and "wide_note" not in proj.tables["order_items"]
    assert proj.tables["orders"]["discount_rate"].isna().all()     # optional, not read -> empty
    assert proj.tables["customers"]["region"].isna().all()
    assert full.tables["orders"]["discount_rate"].notna().any()
    assert proj.tables["order_items"]["order_id"].dtype == schema.ID
    o, i = proj.tables["orders"], proj.tables["order_items"]
    assert_same(prep_customers.rfm_table(o, i), prep_customers.rfm_table(full.tables["orders"], full.tables["order_items"]))


def test_load_dataset_projection_errors_name_the_fix(sample_dir):
    with pytest.raises(ParameterError, match="unknown column"):
        io.load_dataset(sample_dir, columns={"orders": ["no_such_column"]})
    with pytest.raises(ParameterError, match="unknown table"):
        io.load_dataset(sample_dir, columns={"ordres": ["status"]})


def test_read_table_projects_csv_and_parquet(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 1.5]})
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    for name in ("t.csv", "t.parquet"):
        got = io.read_table(tmp_path / name, columns=["c", "a", "absent"])
        assert list(got.columns) == ["a", "c"]


def test_clean_reconciles_on_edge_cases():
    t = edge_tables()
    res = quality.clean({k: v for k, v in t.items()})
    rec = res.reconciliation.set_index("table")
    assert rec["reconciles"].all()
    q = res.quarantine
    lines = q[q["table"] == "order_items"]
    assert (lines.loc[lines["order_id"] == "missing-order", "reason"] == "orphan_key").all()
    assert len(res.tables["order_items"]) + len(lines) == len(t["order_items"])


def test_duplicated_on_integer_codes_matches_pandas():
    """schema.duplicated (integer codes + one hash pass) == DataFrame.duplicated, NaN equal to NaN."""
    rng = np.random.default_rng(3)
    n = 5_000
    df = pd.DataFrame({
        "a": pd.Series(rng.integers(0, 900, n).astype(str)).astype(schema.ID),
        "b": rng.integers(0, 3, n),
        "c": rng.integers(0, 4, n).astype(float),
        "d": pd.Categorical(rng.choice(["x", "y", None], n)),
    })
    df.loc[::7, "a"] = pd.NA
    df.loc[::5, "c"] = np.nan
    df = df.sort_values("a", kind="stable").reset_index(drop=True)  # runs of equal ids, as order lines
    for cols in (["a"], ["a", "b"], ["a", "b", "c", "d"], ["c"], ["d"]):
        for keep in ("first", "last", False):
            got = data_keys.duplicated(df, cols, keep=keep)
            assert (got == df.duplicated(cols, keep=keep).to_numpy()).all(), (cols, keep)


def test_coerce_fast_paths_match_the_text_path():
    """Columns already in their canonical dtype take fast paths with the same result."""
    ids = pd.Series([" a1", "b2", "", None, "c3 "], dtype=schema.ID)
    spec = schema.TABLES["orders"].column("order_id")
    fast = schema.coerce_column(ids, spec, table="orders")
    slow = schema.coerce_column(ids.astype(object), spec, table="orders")
    assert fast.dtype == schema.ID and fast.tolist() == slow.tolist() == ["a1", "b2", pd.NA, pd.NA, "c3"]
    clean_ids = pd.Series(["a", "b"], dtype=schema.ID)
    assert schema.coerce_column(clean_ids, spec, table="orders").tolist() == ["a", "b"]
    text = pd.Series([" North", "", None], dtype=schema.TEXT)
    tspec = schema.TABLES["customers"].column("region")
    assert schema.coerce_column(text, tspec, table="customers").tolist() == \
        schema.coerce_column(text.astype(object), tspec, table="customers").tolist()
    status = pd.Series(pd.Categorical(["Completed", " returned", None, "completed"]))
    sspec = schema.TABLES["orders"].column("status")
    got = schema.coerce_column(status, sspec, table="orders")
    ref = schema.coerce_column(status.astype(object), sspec, table="orders")
    assert list(got.cat.categories) == list(schema.ORDER_STATUSES)
    assert got.astype(object).tolist() == ref.astype(object).tolist()
    with pytest.raises(SchemaError, match=r"'status' has 1 value\(s\) that are not one of .* row 2 = 'lost'"):
        schema.coerce_column(pd.Series(pd.Categorical(["completed", "lost"])), sspec, table="orders")


@pytest.mark.parametrize("unit_ns", [86_400 * 10**9, 10**9, 1_000, 1])
def test_sort_by_customer_then_time_matches_lexsort(unit_ns):
    rng = np.random.default_rng(7)
    code = rng.integers(0, 5_000, 40_000)
    t = (1_600_000_000 * 10**9 // unit_ns + rng.integers(0, 3 * 10**6, 40_000)) * unit_ns
    perm = prep_churn._by_customer_then_time(code, t)
    ref = np.lexsort((t, code))
    # same (customer, time) sequence; only rows that tie on both may trade places
    np.testing.assert_array_equal(code[perm], code[ref])
    np.testing.assert_array_equal(t[perm], t[ref])
    assert sorted(perm.tolist()) == list(range(len(code)))
