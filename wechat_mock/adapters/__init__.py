"""Adapters of the simulator: ``keys`` (platform key pair and APIv3 key in --keys-dir),
``tables`` (SQLAlchemy Core tables), ``staging`` (reads now, guarded writes staged for one commit),
``repositories`` / ``delivery_repos`` (domain objects in and out of the tables),
``notification_client`` (PaymentNotifications/Notify to the merchant)."""
