"""Adapters of the simulator, implementing the service layer's ports: ``keys`` (platform key pair
and APIv3 key in --keys-dir), ``tables`` (SQLAlchemy Core tables), ``staging`` (reads now, guarded
writes staged for one commit), ``repositories`` / ``delivery_repos`` (domain objects in and out of
the tables), ``unit_of_work`` (the SQL unit of work: one ``Database.write`` per commit),
``notification_client`` (PaymentNotifications/Notify to the merchant)."""
