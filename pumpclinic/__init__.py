"""PumpClinic: clinic software for intrathecal baclofen pumps."""
