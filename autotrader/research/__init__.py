"""The application's research side: the ``bma`` command and its composition root.

:mod:`autotrader.research.cli` parses ``bma run``; :mod:`autotrader.research.wiring`
reads the configuration store, loads bars from the chosen source (demo market,
CSV/Parquet file, Polygon) and hands plain frames and settings to the pure
research core (:class:`bma_models.pipeline.ResearchPipeline`) and its report
writers. The GUI's research job (:mod:`autotrader.services.research_job`) uses
the same functions, so a run from the GUI is a run of ``bma run``.
"""
