# An Action Cable server as a Rails app's app/channels would make one,
# without the rest of Rails: the connection admits the token in the
# request's params (reject_unauthorized_connection otherwise) and
# ChatChannel rejects a subscription to any room but "lobby".
# Run: puma -b tcp://127.0.0.1:PORT cable.ru, with CABLE_TOKEN set.
require "logger"
require "action_cable"

module ApplicationCable
  class Connection < ActionCable::Connection::Base
    identified_by :user

    def connect
      reject_unauthorized_connection unless request.params["token"] == ENV.fetch("CABLE_TOKEN")
      self.user = "canary"
    end
  end

  class Channel < ActionCable::Channel::Base
  end
end

class ChatChannel < ApplicationCable::Channel
  def subscribed
    reject unless params[:room] == "lobby"
    stream_from "chat_lobby"
  end
end

ActionCable.server.config.cable = { "adapter" => "async" }
ActionCable.server.config.connection_class = -> { ApplicationCable::Connection }
ActionCable.server.config.disable_request_forgery_protection = true
ActionCable.server.config.logger = Logger.new($stderr)

run ActionCable.server
