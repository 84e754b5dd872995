"""Adapters of the simulator: ``keys`` (platform key pair and APIv3 key in --keys-dir),
``tables`` (SQLAlchemy Core tables), ``repositories`` / ``delivery_repos`` (domain objects in and
out of them), ``notification_client`` (PaymentNotifications/Notify to the merchant)."""
