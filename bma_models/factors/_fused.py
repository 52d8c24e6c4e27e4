"""Fused numba kernel: every registered factor in one pass over the bars.

The kernel walks the market sessions in order for one block of tickers at a
time. Per session it derives the per-bar series (returns, gains, dollar volume,
true range...) into a ring buffer of the last ``ring`` sessions, updates one
running state per distinct rolling request (a compensated sum or a running
extreme, shared by every factor that asks for the same series and window) and
writes each factor's value straight into its row of the result, at the bar's
position in (date, ticker) order. Nothing of the size of the panel is
allocated: inputs are the bar columns themselves (sorted) and the output is the
final result.

Semantics are those of :mod:`bma_models.factors.library` (complete windows on
the market grid, NaN on a division by zero); the plan built by
:func:`plan_specs` maps each registered family to a kernel opcode. Sums are
running sums that recover every addition's rounding error exactly (TwoSum) and
carry it in a compensation term, restarted at exactly
zero whenever the window holds nothing but zeros and gaps (so a window of zero
volume sums to 0, not to the rounding residue of the values that left it); a
non-finite value in a window makes it incomplete. Running maxima and minima use
the van Herk / Gil-Werman blocks (three comparisons per value, exact). Per
ticker, the arithmetic depends only on that ticker's past sessions, never on the
block width or the thread that ran it, so results are bit-identical for every
tiling and thread count.
"""

from __future__ import annotations

import math

import numpy as np

from bma_models._jit import inline_kernel, kernel
from bma_models.factors import library

# derived series held in the ring buffer
CLOSE, RET, RET_SQ, GAIN, LOSS, VOLUME, DOLLAR, AMIHUD, TRUE_RANGE, HIGH, LOW = range(11)
N_SERIES = 11
# opcodes of the factor formulas
(MA_RATIO, VOL, RSI, HL_POS, MOM, MOM_SKIP, REVERSAL, VOLUME_TREND, ADV, AMIHUD_MEAN, ATR,
 GAP, RANGE, CLV, VWAP, TURNOVER) = range(16)


class Plan:
    """Kernel operands for a list of specs: rolling requests and per-factor opcodes.

    ``sums`` rows are (series, window) of the running sums, ``extremes`` rows
    (series, window, sign, offset) of the running maxima (sign -1: minima); ``ops`` rows
    are (opcode, window, a, b, short) per output column, where ``a``/``b`` index
    a sum or an extreme (``a`` holds the skip of ``momentum_skip``). ``ring`` is the number of
    sessions the kernel keeps (longest window or shift plus one).
    """

    def __init__(self):
        self._sums: dict[tuple[int, int], int] = {}
        self._extremes: dict[tuple[int, int, int], int] = {}
        self._ops: list[tuple[int, int, int, int, int]] = []
        self.ring = 2

    @property
    def size(self) -> int:
        return len(self._ops)

    @property
    def log_rows(self) -> list[int]:
        """Output rows the kernel leaves as means, to be turned into ``log1p`` in bulk."""
        return [i for i, op in enumerate(self._ops) if op[0] == ADV]

    def sum(self, series: int, window: int) -> int:
        self.ring = max(self.ring, window + 1)
        return self._sums.setdefault((series, window), len(self._sums))

    def extreme(self, series: int, window: int, sign: int) -> int:
        self.ring = max(self.ring, window + 1)
        return self._extremes.setdefault((series, window, sign), len(self._extremes))

    def _extreme_rows(self) -> list[tuple[int, int, int, int]]:
        # (series, window, sign, first row of the request's suffix buffer)
        offsets = np.cumsum([0] + [w for _, w, _ in self._extremes])
        return [(*key, int(offsets[i])) for i, key in enumerate(self._extremes)]

    def op(self, code: int, window: int = 0, a: int = 0, b: int = 0, short: int = 0) -> None:
        self.ring = max(self.ring, window + 1)
        self._ops.append((code, window, a, b, short))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sums = np.array(list(self._sums) or np.empty((0, 2)), dtype=np.int64).reshape(-1, 2)
        extremes = np.array(self._extreme_rows() or np.empty((0, 4)),
                            dtype=np.int64).reshape(-1, 4)
        return sums, extremes, np.array(self._ops, dtype=np.int64).reshape(-1, 5)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


_PARAMS = {library.momentum_skip: {"window", "skip"}, library.volume_trend: {"window", "short"},
           library.overnight_gap: set(), library.intraday_range: set(),
           library.close_location: set(), library.vwap_distance: set()}


def _plan_one(plan: Plan, function, params: dict) -> bool:
    # the same parameter checks as the library functions; False: not a fused family
    # (or parameters the library function would reject with a TypeError)
    if set(params) != _PARAMS.get(function, {"window"}):
        return False
    _check(all(isinstance(v, (int, np.integer)) and v >= 1 for v in params.values()),
           f"windows must be integers >= 1, got {params}")
    w = params.get("window", 0)
    simple = {library.overnight_gap: GAP, library.intraday_range: RANGE,
              library.close_location: CLV, library.vwap_distance: VWAP}
    means = {library.ma_ratio: (MA_RATIO, CLOSE), library.average_dollar_volume: (ADV, DOLLAR),
             library.amihud: (AMIHUD_MEAN, AMIHUD), library.atr_ratio: (ATR, TRUE_RANGE),
             library.turnover: (TURNOVER, VOLUME)}
    shifts = {library.momentum: MOM, library.reversal: REVERSAL}
    if function in simple:
        plan.op(simple[function])
    elif function in means:
        code, series = means[function]
        plan.op(code, w, plan.sum(series, w))
    elif function in shifts:
        plan.op(shifts[function], w)
    elif function is library.volatility:
        _check(w >= 2, f"a standard deviation needs window >= 2, got {w}")
        plan.op(VOL, w, plan.sum(RET, w), plan.sum(RET_SQ, w))
    elif function is library.rsi:
        plan.op(RSI, w, plan.sum(GAIN, w), plan.sum(LOSS, w))
    elif function is library.high_low_position:
        plan.op(HL_POS, w, plan.extreme(HIGH, w, 1), plan.extreme(LOW, w, -1))
    elif function is library.momentum_skip:
        skip = params["skip"]
        _check(skip < w, f"skip ({skip}) must be smaller than window ({w})")
        plan.op(MOM_SKIP, w, skip)
    elif function is library.volume_trend:
        short = params["short"]
        _check(short < w, f"short ({short}) must be smaller than window ({w})")
        plan.op(VOLUME_TREND, w, plan.sum(VOLUME, short), plan.sum(VOLUME, w), short)
    else:
        return False
    return True


def plan_specs(specs) -> Plan | None:
    """Return the kernel plan of ``specs``, or None when one of them is not a fused family.

    Raises
    ------
    ValueError
        On the parameter errors the library functions raise (``skip >= window``...).
    """
    plan = Plan()
    for spec in specs:
        if not _plan_one(plan, spec.function, dict(spec.params)):
            return None
    return plan


@kernel
def _ratio(a, b):
    q = a / b
    return np.nan if math.isinf(q) else q


@kernel
def _nan_max(a, b):
    # np.maximum: NaN if either is NaN
    if math.isnan(a) or math.isnan(b):
        return np.nan
    return a if a >= b else b


@kernel
def _derive(d, slot, ring, bars, has_bar, p, t0, width, pos, cur):
    # the bars of session d into cur (open high low close vwap volume), then the
    # derived series into the ring's slot (a branch-free, vectorisable loop)
    for j in range(width):
        if has_bar[d, t0 + j]:
            pos[j] = p
            for k in range(6):
                cur[k, j] = bars[k][p]
            p += 1
        else:
            pos[j] = -1
            for k in range(6):
                cur[k, j] = np.nan
    # the slot of session d - 1 still holds NaN at d = 0 (the ring starts as NaN)
    prev = ring[CLOSE, (d - 1) % ring.shape[1]]
    high, low, close, volume = cur[1], cur[2], cur[3], cur[5]
    for j in range(width):
        h, lo, c, v, pc = high[j], low[j], close[j], volume[j], prev[j]
        ret = _ratio(c, pc) - 1.0
        change = c - pc
        dollar = c * v
        ring[CLOSE, slot, j] = c
        ring[RET, slot, j] = ret
        ring[RET_SQ, slot, j] = ret * ret
        ring[GAIN, slot, j] = _nan_max(change, 0.0)
        ring[LOSS, slot, j] = _nan_max(-change, 0.0)
        ring[VOLUME, slot, j] = v
        ring[DOLLAR, slot, j] = dollar
        ring[AMIHUD, slot, j] = _ratio(abs(ret), dollar) * 1e6
        ring[TRUE_RANGE, slot, j] = _nan_max(h - lo, _nan_max(abs(h - pc), abs(lo - pc)))
        ring[HIGH, slot, j] = h
        ring[LOW, slot, j] = lo
    return p


@inline_kernel
def _sum_row(new, old, leaving, span, warm, total, comp, bad, empty, values, width):
    # branch-free (vectorisable) compensated update of one running window sum per
    # ticker: every addition's rounding error is recovered exactly (TwoSum) and
    # accumulated in comp, so a huge value that enters and leaves the window (a
    # 1e17 volume print) leaves no residue in the sums after it. bad counts the
    # window's non-finite values, empty those that are not finite or zero.
    for j in range(width):
        x = new[j]
        finite = x - x == 0.0
        count = bad[j] + (0 if finite else 1)
        blank = empty[j] + (0 if finite and x != 0.0 else 1)
        x = x if finite else 0.0
        s = total[j] + x
        part = s - total[j]
        c = comp[j] + ((total[j] - (s - part)) + (x - part))
        if leaving:
            x = old[j]
            finite = x - x == 0.0
            count -= 0 if finite else 1
            blank -= 0 if finite and x != 0.0 else 1
            x = -x if finite else 0.0
            t = s + x
            part = t - s
            c += (s - (t - part)) + (x - part)
            s = t
        # nothing but zeros and gaps left in the window: restart exactly at zero
        s = 0.0 if blank == span else s
        c = 0.0 if blank == span else c
        total[j] = s
        comp[j] = c
        bad[j] = count
        empty[j] = blank
        values[j] = s + c if warm and count == 0 else np.nan


@kernel
def _update_sums(d, slot, ring, sums, total, comp, bad, empty, values, width):
    n_ring = ring.shape[1]
    for k in range(sums.shape[0]):
        series, w = sums[k, 0], sums[k, 1]
        _sum_row(ring[series, slot], ring[series, (d - w) % n_ring], d >= w, min(d + 1, w),
                 d >= w - 1, total[k], comp[k], bad[k], empty[k], values[k], width)


@kernel
def _update_extremes(d, slot, ring, extremes, prefix, suffix, bad, values, width):
    # running max (min: sign -1) of complete windows by van Herk / Gil-Werman:
    # sessions are cut into blocks of w from session 0; a window is the suffix of
    # one block (computed when that block completes) and the prefix of the next
    n_ring = ring.shape[1]
    for k in range(extremes.shape[0]):
        series, w, sign, offset = extremes[k, 0], extremes[k, 1], extremes[k, 2], extremes[k, 3]
        phase = d % w
        old = (d - w) % n_ring
        for j in range(width):
            x = sign * ring[series, slot, j]
            finite = x == x
            bad[k, j] += 0 if finite else 1
            if d >= w:
                bad[k, j] -= 0 if ring[series, old, j] == ring[series, old, j] else 1
            x = x if finite else -np.inf
            prefix[k, j] = x if phase == 0 or x > prefix[k, j] else prefix[k, j]
        if phase == w - 1:  # block complete: its suffix maxima, from the ring
            for i in range(w - 1, -1, -1):
                source = (d - (w - 1 - i)) % n_ring
                for j in range(width):
                    x = sign * ring[series, source, j]
                    x = x if x == x else -np.inf
                    if i < w - 1 and suffix[offset + i + 1, j] > x:
                        x = suffix[offset + i + 1, j]
                    suffix[offset + i, j] = x
        start = (d + 1) % w  # where the window's first session sits in its block
        for j in range(width):
            top = prefix[k, j]
            if start != 0 and suffix[offset + start, j] > top:
                top = suffix[offset + start, j]
            complete = d >= w - 1 and bad[k, j] == 0
            values[k, j] = sign * top if complete else np.nan


@kernel
def _window_row(code, w, a, b, short, d, width, ring, cur, sums, ext, tmp):
    # one windowed factor for every ticker of the block on session d, into tmp (one
    # loop per opcode: a call per cell would pay numba's reference counting of
    # every array argument, and branch-free loops vectorise)
    if code == MA_RATIO:
        for j in range(width):
            tmp[j] = _ratio(cur[3, j], sums[a, j] / w) - 1.0
    elif code == VOL:
        for j in range(width):
            var = sums[a, j] * sums[a, j]
            var /= w
            var = sums[b, j] - var
            var /= w - 1
            tmp[j] = math.sqrt(0.0 if var < 0.0 else var)
    elif code == RSI:
        for j in range(width):
            gain = sums[a, j] / w
            tmp[j] = _ratio(gain, gain + sums[b, j] / w) * 100.0
    elif code == HL_POS:
        for j in range(width):
            tmp[j] = _ratio(cur[3, j] - ext[b, j], ext[a, j] - ext[b, j])
    elif code == MOM or code == REVERSAL or code == MOM_SKIP:
        sign = -1.0 if code == REVERSAL else 1.0
        if d < w:
            tmp[:width] = np.nan
        else:
            end = ring[CLOSE, (d - (a if code == MOM_SKIP else 0)) % ring.shape[1]]
            start = ring[CLOSE, (d - w) % ring.shape[1]]
            for j in range(width):
                tmp[j] = sign * (_ratio(end[j], start[j]) - 1.0)
    elif code == VOLUME_TREND:
        for j in range(width):
            tmp[j] = _ratio(sums[a, j] / short, sums[b, j] / w) - 1.0
    elif code == ADV or code == AMIHUD_MEAN:  # ADV: log1p applied by the caller, in bulk
        for j in range(width):
            tmp[j] = sums[a, j] / w
    elif code == ATR:
        for j in range(width):
            tmp[j] = _ratio(sums[a, j] / w, cur[3, j])


@kernel
def _bar_row(code, w, a, t0, d, width, ring, cur, sums, shares, tmp):
    # one single-bar factor (or turnover) for every ticker of the block on session d
    prev = ring[CLOSE, (d - 1) % ring.shape[1]]  # NaN at d = 0
    for j in range(width):
        c = cur[3, j]
        if code == GAP:
            value = _ratio(cur[0, j], prev[j]) - 1.0
        elif code == RANGE:
            value = _ratio(cur[1, j] - cur[2, j], c)
        elif code == CLV:
            spread = cur[1, j] - cur[2, j]
            value = _ratio((c - cur[2, j]) - (cur[1, j] - c), spread)
            if spread == 0.0 and c - c == 0.0:
                value = 0.0
        elif code == VWAP:
            value = _ratio(c, cur[4, j]) - 1.0
        else:  # TURNOVER
            value = _ratio(sums[a, j] / w, shares[t0 + j])
        tmp[j] = value


@inline_kernel
def _store(row, tmp, pos, first, full, width):
    # the block's values of one session into their (date, ticker) positions
    if full:
        row[first : first + width] = tmp[:width]
    else:
        for j in range(width):
            if pos[j] >= 0:
                row[pos[j]] = tmp[j]


@kernel
def _block(bars, has_bar, shares, starts, t0, t1, ring_len, sums, extremes, ops,
           out):
    # every session of tickers t0:t1; starts[d] = position of the first bar of the
    # block on session d in (date, ticker) order
    width = t1 - t0
    ring = np.full((N_SERIES, ring_len, width), np.nan)
    cur = np.empty((6, width))
    pos = np.empty(width, dtype=np.int64)
    tmp = np.empty(width)
    total = np.zeros((sums.shape[0], width))
    comp = np.zeros((sums.shape[0], width))
    sum_bad = np.zeros((sums.shape[0], width), dtype=np.int64)
    sum_empty = np.zeros((sums.shape[0], width), dtype=np.int64)
    sum_values = np.empty((sums.shape[0], width))
    prefix = np.full((extremes.shape[0], width), -np.inf)
    suffix = np.full((max(1, np.sum(extremes[:, 1])), width), -np.inf)
    ext_bad = np.zeros((extremes.shape[0], width), dtype=np.int64)
    ext_values = np.empty((extremes.shape[0], width))
    for d in range(has_bar.shape[0]):
        slot = d % ring_len
        end = _derive(d, slot, ring, bars, has_bar, starts[d], t0, width, pos, cur)
        full = end - starts[d] == width
        _update_sums(d, slot, ring, sums, total, comp, sum_bad, sum_empty, sum_values, width)
        _update_extremes(d, slot, ring, extremes, prefix, suffix, ext_bad, ext_values, width)
        for f in range(ops.shape[0]):
            code, w, a, b, short = ops[f, 0], ops[f, 1], ops[f, 2], ops[f, 3], ops[f, 4]
            if code >= GAP:
                _bar_row(code, w, a, t0, d, width, ring, cur, sum_values, shares, tmp)
            else:
                _window_row(code, w, a, b, short, d, width, ring, cur, sum_values, ext_values,
                            tmp)
            _store(out[f], tmp, pos, starts[d], full, width)


@kernel
def block_starts(has_bar, edges):
    """Position of each block's first bar per session: shape (n_dates, n_blocks)."""
    n_dates, n_blocks = has_bar.shape[0], edges.shape[0] - 1
    starts = np.empty((n_dates, n_blocks), dtype=np.int64)
    p = 0
    for d in range(n_dates):
        for k in range(n_blocks):
            starts[d, k] = p
            for t in range(edges[k], edges[k + 1]):
                if has_bar[d, t]:
                    p += 1
    return starts


def run_block(bars, has_bar, shares, starts, t0, t1, plan: Plan, out) -> None:
    """Compute every planned factor for tickers ``t0:t1`` into ``out`` (GIL released).

    ``bars`` is a tuple of read-only float64 arrays ``open high low close vwap
    volume`` in (date, ticker) order; ``out`` has one row per planned spec.
    """
    sums, extremes, ops = plan.arrays()
    _block(bars, has_bar, shares, starts, t0, t1, plan.ring, sums, extremes, ops, out)
