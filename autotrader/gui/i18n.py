"""GUI labels in English and Chinese; ``app.language`` (en|zh) picks the column.

Only labels that name an action or a tab are translated; table headers and
log text stay English (they match the files and the log).
"""

from __future__ import annotations

LABELS: dict[str, tuple[str, str]] = {
    "tab.research": ("Research", "研究"),
    "tab.trading": ("Trading engine", "交易引擎"),
    "tab.risk": ("Risk settings", "风险设置"),
    "tab.data": ("Data / Polygon", "数据 / Polygon"),
    "tab.watchlist": ("Database / watchlist", "数据库 / 自选股"),
    "tab.backtest": ("Backtest", "回测"),
    "tab.logs": ("Logs", "日志"),
    "research.run": ("Run BMA model", "一键运行BMA模型"),
    "research.cancel": ("Cancel", "取消"),
    "research.open_excel": ("Open Excel file", "打开Excel文件"),
    "research.open_folder": ("Open result folder", "打开结果文件夹"),
    "trading.test": ("Test connection", "测试连接"),
    "trading.start": ("Start auto trading", "开始自动交易"),
    "trading.stop": ("Stop", "停止"),
    "trading.preview": ("Preview orders", "预览订单"),
    "trading.send": ("Send", "发送"),
    "trading.arm": ("Arm live trading", "启用实盘交易"),
    "risk.save": ("Save", "保存"),
    "risk.revert": ("Revert", "还原"),
    "data.update": ("Update data", "更新数据"),
    "data.test": ("Test request", "测试请求"),
    "watchlist.import": ("Import stocks.txt / CSV", "导入 stocks.txt / CSV"),
    "watchlist.add": ("Add", "添加"),
    "watchlist.remove": ("Remove selected", "删除所选"),
    "backtest.load": ("Load newest run", "加载最新结果"),
}


def label(key: str, language: str = "en") -> str:
    """Return the label of ``key`` in ``language`` ("en" or "zh"); an unknown key is returned as is.

    Examples
    --------
    >>> label("research.run", "zh")
    '一键运行BMA模型'
    """
    en, zh = LABELS.get(key, (key, key))
    return zh if language == "zh" else en
