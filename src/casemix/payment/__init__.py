"""The money side of casemix: one settlement core for DRG, DIP and Dask.

Modules are added per domain step (policy, pools, pricing, settlement,
city tables); see ``../shared/DESIGN.md`` ("casemix.payment").
"""
